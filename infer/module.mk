# infer/: see infer/README.md
