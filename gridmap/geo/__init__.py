"""Geography: coordinate systems, layer sets, validation, the grid builder, the cell locator and area index."""
