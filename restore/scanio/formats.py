"""What scan and result files may be: the formats a result can be written in (with each
one's file extension) and the largest image photochrom decodes. No imports: the settings
check names against it, and the command line shows its defaults, without loading the image
libraries."""

FORMAT_EXTENSIONS = {"TIFF": ".tif", "PNG": ".png", "JPEG": ".jpg", "BMP": ".bmp"}
DEFAULT_MAX_PIXELS = 1_000_000_000  # larger images are refused as likely decompression bombs
