#define SPACE_VERSION "0.1.0"
