"""ftpdup: duplicate every file uploaded into a lane to all of the lane's subscribers."""

import os
import sys

__version__ = "0.2.0"

# A distribution package may ship libraries the distribution lacks (py-consul
# on EL9) in a private folder; when it exists, its copies are the ones the
# package was built and tested with.
BUNDLED = "/usr/share/ftpdup/python"
if os.path.isdir(BUNDLED) and BUNDLED not in sys.path:
    sys.path.insert(0, BUNDLED)
