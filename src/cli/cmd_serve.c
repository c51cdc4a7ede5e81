#include "cli.h"
void cmd_serve_usage(FILE *out) { fprintf(out, "serve\n"); }
int cmd_serve_main(int argc, char **argv) { (void)argc; (void)argv; return 1; }
