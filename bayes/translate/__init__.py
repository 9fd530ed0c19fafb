"""Mouse-to-human translation: species scaling with uncertainty, human dosing scenarios.

Not yet implemented (issue 6).
"""
