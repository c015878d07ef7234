"""Sales analytics (seed 001): warehouse, dashboard, predictions."""
