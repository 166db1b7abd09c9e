"""Lane use cases (service layer): plain functions over a unit of work and the domain."""
