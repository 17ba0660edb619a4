# Stands in for a generated guest module whose evaluation fails.
throw "demo evaluation failure"
