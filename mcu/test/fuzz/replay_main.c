// Runs a libFuzzer target on the files named on the command line, without libFuzzer: the committed corpus
// (tests/fuzz_corpus/) is replayed this way by tests/test_fuzz_corpus.py with any compiler that has ASan and
// UBSan (gcc included). Exit status 0 when every input ran; a finding aborts (sanitizer or the target's check).
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    FILE* file = fopen(argv[i], "rb");
    if (!file) {
      perror(argv[i]);
      return 2;
    }
    static uint8_t data[1 << 20];
    size_t size = fread(data, 1, sizeof data, file);
    fclose(file);
    fprintf(stderr, "replay %s (%zu bytes)\n", argv[i], size);
    LLVMFuzzerTestOneInput(data, size);
  }
  return 0;
}
