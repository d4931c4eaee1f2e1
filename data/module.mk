# data/: see data/README.md.
PROGRAMS += tipcap-prep
tipcap-prep_SRCS := data/prep_main.c
