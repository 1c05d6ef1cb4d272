"""Geography: coordinate systems, layer sets, validation, the grid builder, the cell locator and area index.

crs → measure → layers → validate (and load_layer_set) → gridbuild; cell_edges → locator; areas on top.
"""
