"""Measurement: scripted dialogues, simulated users, offline re-rank, explanations, saved runs and their report."""
