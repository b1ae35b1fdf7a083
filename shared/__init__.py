"""calsync: Google Calendar meetings of a customer-success team, turned into account interactions."""
