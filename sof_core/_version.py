"""Version of this distribution and of the plugin API it provides."""

__version__ = "0.1.0"

#: Bumped only when the public contract (DESIGN.md) changes incompatibly. A plugin module may
#: declare ``SOF_API_VERSION = 1``; a mismatch is reported and the plugin is skipped.
API_VERSION = 1
