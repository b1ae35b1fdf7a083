"""The pure core: models, email and domain rules, matching, planning. No I/O, no clock,
no environment, no google.* imports."""
