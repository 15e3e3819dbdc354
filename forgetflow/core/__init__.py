"""Core library: data, models, training, triggers, requests, unlearning, metrics."""
