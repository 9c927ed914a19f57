"""Constants shared by the model, the predictor, the evaluation and the plugin.

Defined once here so that no threshold or code is repeated elsewhere.
"""

# --- reference label map codes (see docs/design.md, "reference map") ---
DEFINITELY_BACKGROUND = 0  # inside a negative click disc
POSSIBLY_BACKGROUND = 1  # predicted background at the previous step
UNKNOWN = 2  # never predicted yet, or the prediction just flipped
POSSIBLY_FOREGROUND = 3  # predicted foreground at the previous step
DEFINITELY_FOREGROUND = 4  # inside a positive click disc
NUM_REFERENCE_CODES = 5

CLICK_RADIUS = 5  # click disc radius in pixels of the network input grid

# --- geometry ---
IMAGE_SIZE = 1024  # network input side T (longest image side is resized to it)
TOKEN_STRIDE = 16  # pixels per decoder token (encoder output is T / 16)
EMBED_DIM = 256  # channels of the encoder output and decoder tokens

# --- decoder thresholds ---
DLU_THRESHOLD = -2.0  # coarse-localiser logit above which a token is in the DLU box
OUTSIDE_LOGIT = -100.0  # logit painted outside the DLU box
MASK_THRESHOLD = 0.0  # logit threshold for a foreground pixel

# --- image normalisation (SAM / MobileSAM statistics, RGB order, 0..255 scale) ---
PIXEL_MEAN = (123.675, 116.28, 103.53)
PIXEL_STD = (58.395, 57.12, 57.375)

# robust contrast percentiles for non-uint8 microscopy images
PERCENTILE_LOW = 1.0
PERCENTILE_HIGH = 99.8
