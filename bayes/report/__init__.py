"""Figures and HTML reports. Used by the command line only, never by the core layers."""
