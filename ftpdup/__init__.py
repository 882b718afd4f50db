"""ftpdup: duplicate every file uploaded into a lane to all of the lane's subscribers."""

__version__ = "0.1.0"
