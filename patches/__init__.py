"""Pure tiling: tile grids with core and halo boxes, blending windows, stitching."""
