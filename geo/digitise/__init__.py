"""Digitising official map sheets: store the sheet, georeference it, trace a zone on it.

``sheets`` keeps uploaded sheets content-addressed, ``georef`` fits pixel -> world
transforms from control points (GDAL through rasterio) and warps overlays, ``trace``
turns a colour on the sheet into WGS84 polygons. No web code: ``api.workbench`` and
``api.cli.digitise`` call the same functions.
"""
