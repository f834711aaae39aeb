"""Points and badges: what people earn for building the library, and the boards that rank them."""
