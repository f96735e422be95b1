"""Third-party output otterbench turns off: the progress bars of transformers and huggingface_hub.

Their tqdm bars ("Loading weights", "Writing model shards", downloads) would draw over otterbench's own
progress view, in the parent and in every arm's process; the view says what each arm is doing instead.
Importing this module imports neither library.
"""

from __future__ import annotations

import os
import sys

# huggingface_hub reads it when it is imported, and transformers follows huggingface_hub; spawned arm
# processes inherit it from the parent's environment
PROGRESS_BARS_VARIABLE = "HF_HUB_DISABLE_PROGRESS_BARS"


def silence_progress_bars() -> None:
    """Turn the bars off in this process and in processes it starts; a user's explicit setting is kept."""
    if os.environ.setdefault(PROGRESS_BARS_VARIABLE, "1") != "1":
        return  # the user asked for the bars (HF_HUB_DISABLE_PROGRESS_BARS=0)
    if "transformers" in sys.modules:  # imported before the variable was set: tell it directly
        from transformers.utils import logging

        logging.disable_progress_bar()
    elif "huggingface_hub" in sys.modules:
        from huggingface_hub.utils import disable_progress_bars

        disable_progress_bars()
