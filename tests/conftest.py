"""Test-wide set-up: quiet logs (warnings and errors still show), so test output stays readable."""
from gateway import logs

logs.configure("warning")
