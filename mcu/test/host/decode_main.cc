// Host driver for tests/test_decode_formats.py: runs the pinned TFLM tree's DECODE operator
// (kernels/decode.cc with decode_state_{lut,prune,huffman}.cc) on one encoded tensor, through TFLM's own
// KernelRunner, and writes the decoded bytes. Usage:
//   decode_main <type int8|int16|int32|int64|float32|bool> <dims d0,d1,...> <zero points z0,...|-> <quantized dim>
//               <encoded file> <ancillary file> <output file>
// Exit status: 0 decoded, 1 DECODE returned an error, 2 bad arguments.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "tensorflow/lite/c/common.h"
#include "tensorflow/lite/micro/kernels/kernel_runner.h"
#include "tensorflow/lite/micro/kernels/micro_ops.h"

// KernelRunner's MockMicroGraph calls this one helper of TFLM's test_helpers.cc, which would pull in the
// whole op set and schema; it is only a cast (test_helpers.cc defines it the same way).
namespace tflite {
namespace testing {
TfLiteIntArray* IntArrayFromInts(const int* int_array) {
  return const_cast<TfLiteIntArray*>(reinterpret_cast<const TfLiteIntArray*>(int_array));
}
}  // namespace testing
}  // namespace tflite

namespace {

bool ReadFile(const char* path, std::vector<unsigned char>& out) {
  FILE* f = std::fopen(path, "rb");
  if (f == nullptr) return false;
  unsigned char buffer[4096];
  size_t n;
  while ((n = std::fread(buffer, 1, sizeof(buffer), f)) > 0) out.insert(out.end(), buffer, buffer + n);
  std::fclose(f);
  return true;
}

std::vector<int> ParseInts(const char* text) {
  std::vector<int> values;
  if (std::strcmp(text, "-") == 0) return values;
  std::string s(text);
  size_t start = 0;
  while (start <= s.size()) {
    size_t end = s.find(',', start);
    if (end == std::string::npos) end = s.size();
    values.push_back(std::atoi(s.substr(start, end - start).c_str()));
    start = end + 1;
  }
  return values;
}

bool TypeOf(const char* name, TfLiteType& type, size_t& size) {
  struct Entry { const char* name; TfLiteType type; size_t size; };
  static const Entry kTypes[] = {{"int8", kTfLiteInt8, 1},   {"int16", kTfLiteInt16, 2},     {"int32", kTfLiteInt32, 4},
                                 {"int64", kTfLiteInt64, 8}, {"float32", kTfLiteFloat32, 4}, {"bool", kTfLiteBool, 1}};
  for (const Entry& e : kTypes) {
    if (std::strcmp(name, e.name) == 0) { type = e.type; size = e.size; return true; }
  }
  return false;
}

// A TfLiteIntArray in static storage (the runner keeps pointers to it).
TfLiteIntArray* IntArray(const std::vector<int>& values, std::vector<int>& storage) {
  storage.assign(1, static_cast<int>(values.size()));
  storage.insert(storage.end(), values.begin(), values.end());
  return reinterpret_cast<TfLiteIntArray*>(storage.data());
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 8) { std::fprintf(stderr, "usage: see the comment at the top of decode_main.cc\n"); return 2; }
  TfLiteType type;
  size_t element_size;
  if (!TypeOf(argv[1], type, element_size)) { std::fprintf(stderr, "unknown type %s\n", argv[1]); return 2; }
  std::vector<int> dims = ParseInts(argv[2]), zero_points = ParseInts(argv[3]);
  const int quantized_dimension = std::atoi(argv[4]);
  std::vector<unsigned char> encoded_file, ancillary_file;
  if (!ReadFile(argv[5], encoded_file) || !ReadFile(argv[6], ancillary_file)) { std::fprintf(stderr, "cannot read inputs\n"); return 2; }
  size_t count = 1;
  for (int d : dims) count *= static_cast<size_t>(d);

  // 16-byte aligned copies, as a flatbuffer's buffers are, with slack for the decoder's word reads.
  std::vector<unsigned char> encoded(encoded_file.size() + 32), ancillary(ancillary_file.size() + 32), output(count * element_size + 16);
  unsigned char* encoded_data = encoded.data() + (16 - reinterpret_cast<uintptr_t>(encoded.data()) % 16) % 16;
  unsigned char* ancillary_data = ancillary.data() + (16 - reinterpret_cast<uintptr_t>(ancillary.data()) % 16) % 16;
  unsigned char* output_data = output.data() + (16 - reinterpret_cast<uintptr_t>(output.data()) % 16) % 16;
  std::memcpy(encoded_data, encoded_file.data(), encoded_file.size());
  std::memcpy(ancillary_data, ancillary_file.data(), ancillary_file.size());

  std::vector<int> s_encoded, s_ancillary, s_output, s_zero_points, s_inputs, s_outputs;
  TfLiteTensor tensors[3] = {};
  tensors[0].type = kTfLiteUInt8;
  tensors[0].data.data = encoded_data;
  tensors[0].dims = IntArray({static_cast<int>(encoded_file.size())}, s_encoded);
  tensors[0].bytes = encoded_file.size();
  tensors[0].allocation_type = kTfLiteMmapRo;
  tensors[1] = tensors[0];
  tensors[1].data.data = ancillary_data;
  tensors[1].dims = IntArray({static_cast<int>(ancillary_file.size())}, s_ancillary);
  tensors[1].bytes = ancillary_file.size();
  tensors[2].type = type;
  tensors[2].data.data = output_data;
  tensors[2].dims = IntArray(dims, s_output);
  tensors[2].bytes = count * element_size;
  tensors[2].allocation_type = kTfLiteArenaRw;
  std::vector<int> s_scales(zero_points.size() + 1);  // TfLiteFloatArray: int size, then the floats
  TfLiteAffineQuantization quantization = {};
  if (!zero_points.empty()) {
    s_scales[0] = static_cast<int>(zero_points.size());
    const float one = 1.0f;
    for (size_t i = 0; i < zero_points.size(); i++) std::memcpy(&s_scales[i + 1], &one, sizeof(one));
    quantization.scale = reinterpret_cast<TfLiteFloatArray*>(s_scales.data());
    quantization.zero_point = IntArray(zero_points, s_zero_points);
    quantization.quantized_dimension = quantized_dimension;
    tensors[2].quantization = {kTfLiteAffineQuantization, &quantization};
    tensors[2].params.scale = 1.0f;
    tensors[2].params.zero_point = zero_points[0];
  }

  TfLiteIntArray* inputs = IntArray({0, 1}, s_inputs);
  TfLiteIntArray* outputs = IntArray({2}, s_outputs);
  const TFLMRegistration registration = tflite::Register_DECODE();
  tflite::micro::KernelRunner runner(registration, tensors, 3, inputs, outputs, nullptr);
  if (runner.InitAndPrepare() != kTfLiteOk || runner.Invoke() != kTfLiteOk) { std::fprintf(stderr, "DECODE failed\n"); return 1; }

  FILE* f = std::fopen(argv[7], "wb");
  if (f == nullptr || std::fwrite(output_data, 1, count * element_size, f) != count * element_size) return 2;
  std::fclose(f);
  return 0;
}
