// Caption corpora: images, each with its captions and its split. Three formats, detected from
// the JSON's shape:
//   Karpathy   {"images": [{"filename", "split", "sentences": [{"raw"}, ...]}, ...]}
//              (dataset_coco.json, dataset_flickr30k.json; split "restval" is folded into train)
//   COCO       {"images": [{"id", "file_name"}], "annotations": [{"image_id", "caption"}]}
//              (captions_*.json; without "images" the key is the image id as text)
//   simple     {"image key": ["caption", ...], ...}   (the shipped data/captions/ files)
// The COCO and simple formats carry no split: every image gets `default_split`.
// Captions are kept as given (raw). An empty or whitespace-only caption, invalid UTF-8, a missing
// field, a wrong type or a duplicate image key is an error naming the file, the field and the
// image (index and key).
#pragma once
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { SPLIT_TRAIN = 0, SPLIT_VAL = 1, SPLIT_TEST = 2, SPLIT_ALL = 3 } Split;

typedef struct {
    char* key;           // Karpathy: filename; COCO: file_name; simple: the JSON key
    Split split;
    int first_caption;   // this image's captions are captions[first_caption .. + n_captions)
    int n_captions;
} CorpusImage;

typedef struct {
    int n_images;
    int n_captions;
    CorpusImage* images;   // [n_images], in file order
    char** captions;       // [n_captions], grouped by image, in file order
    int* caption_image;    // [n_captions] index into images
} Corpus;

// Parses `path`. Returns 0, or -1 with the message in err (nothing to free then).
int corpus_load(const char* path, Split default_split, Corpus* c, char* err, size_t err_size);
// Same, from a buffer; `name` stands for the file in messages.
int corpus_parse(const char* json, size_t len, const char* name, Split default_split, Corpus* c,
                 char* err, size_t err_size);
void corpus_free(Corpus* c);

// Counts per split (restval already counted as train).
void corpus_count(const Corpus* c, Split split, int* n_images, int* n_captions);

// "train" | "val" | "test" | "all" (and "restval" -> train); -1 for anything else.
int split_parse(const char* s);
const char* split_name(Split s);

#ifdef __cplusplus
}
#endif
