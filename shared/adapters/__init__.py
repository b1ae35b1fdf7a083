"""The only code that imports google.cloud / googleapiclient / oauth libraries. Adapters
translate SDK objects and errors into domain objects and the error kinds of `shared.errors`."""
