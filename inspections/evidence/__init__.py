"""Photo evidence: upload (multipart or presigned), the processing queue, reading, the sweeper.

The image work itself (detection, EXIF, derivatives, geofence) is media/, a pure library.
"""
