"""Analytics: indicators, hot spots and trends."""
