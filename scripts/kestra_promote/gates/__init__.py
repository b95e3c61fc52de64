"""Around a promotion: the rules that say whether it may happen and who hears of it. Sync
windows, the plan posted on a pull request, notifications and webhook decisions live here, and
so do production's policy and checks. A gate decides or reports; it never writes flows.
"""
