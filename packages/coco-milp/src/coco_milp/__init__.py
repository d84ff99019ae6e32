"""CoCo-MILP reproduction."""
