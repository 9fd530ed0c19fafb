"""First-in-human trial simulation: escalation designs and operating characteristics.

Not yet implemented (issue 7).
"""
