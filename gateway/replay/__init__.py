"""sorgw replay: recorded parent orders worked again with another strategy, against the market they met."""
