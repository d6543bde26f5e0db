"""The FIX adapter: quickfix sessions in, plain domain events out; quickfix types stay in here."""
