// run-opencv MODEL.onnx IN.f32 N C H W OUT.f32: runs an ONNX model in OpenCV's dnn (Debian's
// libopencv-dnn, another engine than nincl) on N images of C x H x W raw little-endian float32
// (NCHW) and writes its output as raw float32. tests/onnx-export.sh compares it with nincl's.
#include <opencv2/dnn.hpp>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <vector>

int main(int argc, char **argv)
{
    if (argc != 8) {
        std::fprintf(stderr, "usage: run-opencv MODEL.onnx IN.f32 N C H W OUT.f32\n");
        return 2;
    }
    int dims[4] = {std::atoi(argv[3]), std::atoi(argv[4]), std::atoi(argv[5]), std::atoi(argv[6])};
    size_t count = (size_t)dims[0] * dims[1] * dims[2] * dims[3];
    std::vector<float> x(count);
    std::ifstream in(argv[2], std::ios::binary);
    if (!in.read(reinterpret_cast<char *>(x.data()), (std::streamsize)(count * sizeof(float)))) {
        std::fprintf(stderr, "run-opencv: cannot read %zu floats from %s\n", count, argv[2]);
        return 2;
    }
    try {
        cv::dnn::Net net = cv::dnn::readNetFromONNX(argv[1]);
        net.setPreferableBackend(cv::dnn::DNN_BACKEND_OPENCV);
        net.setPreferableTarget(cv::dnn::DNN_TARGET_CPU);
        cv::Mat blob(4, dims, CV_32F, x.data());
        net.setInput(blob);
        cv::Mat y = net.forward();
        std::ofstream out(argv[7], std::ios::binary);
        out.write(reinterpret_cast<const char *>(y.ptr<float>()), (std::streamsize)(y.total() * sizeof(float)));
        std::printf("run-opencv: %s: output of %zu values\n", argv[1], (size_t)y.total());
        return out ? 0 : 1;
    } catch (const cv::Exception &e) {
        std::fprintf(stderr, "run-opencv: %s: %s\n", argv[1], e.what());
        return 1;
    }
}
