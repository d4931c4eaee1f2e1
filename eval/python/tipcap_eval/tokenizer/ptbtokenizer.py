"""pycocoevalcap's PTBTokenizer (Stanford PTBTokenizer 3.4.1, -preserveLines -lowerCase, then the
toolkit's punctuation filter), in C."""
from .._native import tokenize


class PTBTokenizer:
    """Python wrapper of the PTB tokenizer, as pycocoevalcap's."""

    def tokenize(self, captions_for_image):
        # every caption of every image as one batch, in the dict's order, as the toolkit does
        image_id = [k for k, v in captions_for_image.items() for _ in range(len(v))]
        tokens = tokenize([c["caption"] for v in captions_for_image.values() for c in v])
        final_tokenized_captions_for_image = {}
        for k, line in zip(image_id, tokens):
            final_tokenized_captions_for_image.setdefault(k, []).append(line)
        return final_tokenized_captions_for_image
