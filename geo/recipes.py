"""Zone recipes: the declarative YAML format, the build context and the geometry operations.

Three modules, one job each: ``geo.recipe_format`` parses and validates recipe files
(and holds the operation registry), ``geo.recipe_context`` builds every zone in one
context in dependency order, ``geo.recipe_ops`` implements the operations. This module
gathers their public names; ``geo.build`` turns the results into the zone table, runs
the checks and writes the report.
"""

from geo.recipe_context import BaseLayers, BuildContext, BuiltZone, build_order, dependencies
from geo.recipe_format import (
    OPERATIONS,
    SPEC_PARAMS,
    NotDigitised,
    NotDigitisedRef,
    Place,
    Recipe,
    RecipeError,
    ZoneEntry,
    describe,
    load_recipe,
    load_recipes,
    operation,
)
from geo.recipe_ops import PartitionResult, area_km2, build_partition, power_cells

__all__ = [
    "OPERATIONS", "SPEC_PARAMS", "BaseLayers", "BuildContext", "BuiltZone", "NotDigitised", "NotDigitisedRef",
    "PartitionResult", "Place", "Recipe", "RecipeError", "ZoneEntry", "area_km2", "build_order",
    "build_partition", "dependencies", "describe", "load_recipe", "load_recipes", "operation", "power_cells",
]
