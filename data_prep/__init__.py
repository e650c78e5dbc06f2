"""Synthetic multitrack music and MUSDB18-HQ / CAD1-shaped datasets, generated offline."""
