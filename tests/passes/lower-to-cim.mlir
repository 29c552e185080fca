// RUN: cimc opt %s --passes "lower-to-cim{input-bits=8,weight-bits=4}" | filecheck %s
// RUN: cimc opt %s --passes "lower-to-cim{input-bits=8,weight-bits=4,weight-scaling=tensor}" | filecheck %s --check-prefix=TENSOR

// Worked by hand; 4-bit weights are integers in [-7, 7], one scale per output column (max |w| / 7).
//
// Gemm (A @ B, alpha = 2, beta = 0.5) calibrated to [-64, 191]: 8-bit codes of scale 255 / 255 = 1 and zero
// point 64. B's columns [1.75, -0.5, 0.25] and [-3.5, 1, 0] have scales 0.25 and 0.5, so the integer weights
// are [7, -2, 1] and [-7, 2, 0] (sums 6 and -5); scale = 1 * [0.25, 0.5] * alpha = [0.5, 1]; bias = beta * C.
// The Relu after it stays digital. The Gemm with transA = 1 reads A = %arg1 [K, M] = [3, 4] (same range, its own
// codes): the codes are transposed to [M, K] on a digital unit, then the same crossbar (alpha 1, no bias).
// CHECK-LABEL: sym_name = "gemm"
// CHECK:       %[[CODES:.*]] = "cim.quantize"(%arg0) <{bits = 8 : i64, scale = 1.0 : f32, zero_point = 64 : i64}> : (tensor<?x3xf32>) -> tensor<?x3xui8> loc("fc")
// CHECK-NEXT:  %[[ACC:.*]] = "cim.linear"(%[[CODES]]) <{input_bits = 8 : i64, weight_bits = 4 : i64, weights = dense<{{\[}}[7, -7], [-2, 2], [1, 0]]> : tensor<3x2xi8>}> : (tensor<?x3xui8>) -> tensor<?x2xi32> loc("fc")
// CHECK-NEXT:  %[[Y:.*]] = "cim.dequantize"(%[[ACC]]) <{bias = dense<[0.5, -0.5]> : tensor<2xf32>, cim.kind = "gemm", cim.weights = 6 : i64, scale = dense<[0.5, 1.0]> : tensor<2xf64>, weight_sums = dense<[6, -5]> : tensor<2xi64>, zero_point = 64 : i64}>
// CHECK-NEXT:  %[[RELU:.*]] = "cim.digital"(%[[Y]]) ({
// CHECK-NEXT:  ^bb0(%[[ARG:arg[0-9]+]]: tensor<?x2xf32>):
// CHECK-NEXT:    %[[R:[0-9]+]] = "graph.relu"(%[[ARG]]) : (tensor<?x2xf32>) -> tensor<?x2xf32> loc("relu")
// CHECK-NEXT:    "cim.yield"(%[[R]]) : (tensor<?x2xf32>) -> ()
// CHECK-NEXT:  }) : (tensor<?x2xf32>) -> tensor<?x2xf32> loc("relu")
// CHECK-NEXT:  %[[CODES_T:.*]] = "cim.quantize"(%arg1) <{bits = 8 : i64, scale = 1.0 : f32, zero_point = 64 : i64}> : (tensor<3x4xf32>) -> tensor<3x4xui8> loc("fc_transposed")
// CHECK-NEXT:  %[[ROWS:.*]] = "cim.digital"(%[[CODES_T]]) ({
// CHECK:         "graph.transpose"(%{{.*}}) <{perm = array<i64: 1, 0>}> : (tensor<3x4xui8>) -> tensor<4x3xui8> loc("fc_transposed")
// CHECK:       %[[ACC_T:.*]] = "cim.linear"(%[[ROWS]]) <{input_bits = 8 : i64, weight_bits = 4 : i64, weights = dense<{{\[}}[7, -7], [-2, 2], [1, 0]]> : tensor<3x2xi8>}> : (tensor<4x3xui8>) -> tensor<4x2xi32> loc("fc_transposed")
// CHECK-NEXT:  %[[GEMM:.*]] = "cim.dequantize"(%[[ACC_T]]) <{cim.kind = "gemm", cim.weights = 6 : i64, scale = dense<[0.25, 0.5]> : tensor<2xf64>, weight_sums = dense<[6, -5]> : tensor<2xi64>, zero_point = 64 : i64}>
// CHECK:       "func.return"(%[[RELU]], %[[GEMM]])
// weight-scaling=tensor: one scale for the whole matrix, max |w| / 7 = 3.5 / 7 = 0.5, so column 0 is [1.75, -0.5,
// 0.25] / 0.5 = [3.5, -1, 0.5], rounded half to even to [4, -1, 0]; column 1 [-7, 2, 0]; scale 1 * 0.5 * alpha 2.
// TENSOR-LABEL: sym_name = "gemm"
// TENSOR:       "cim.linear"(%{{.*}}) <{input_bits = 8 : i64, weight_bits = 4 : i64, weights = dense<{{\[}}[4, -7], [-1, 2], [0, 0]]> : tensor<3x2xi8>}>
// TENSOR-NEXT:  "cim.dequantize"(%{{.*}}) <{bias = dense<[0.5, -0.5]> : tensor<2xf32>, cim.kind = "gemm", cim.weights = 6 : i64, scale = dense<1.0> : tensor<2xf64>, weight_sums = dense<[3, -5]> : tensor<2xi64>, zero_point = 64 : i64}>
"builtin.module"() ({
  "func.func"() <{function_type = (tensor<?x3xf32>, tensor<3x4xf32>) -> (tensor<?x2xf32>, tensor<4x2xf32>), sym_name = "gemm"}> ({
  ^bb0(%arg0: tensor<?x3xf32>, %arg1: tensor<3x4xf32>):
    %0 = "graph.constant"() <{value = dense<[[1.75, -3.5], [-0.5, 1.0], [0.25, 0.0]]> : tensor<3x2xf32>}> : () -> tensor<3x2xf32>
    %1 = "graph.constant"() <{value = dense<[1.0, -1.0]> : tensor<2xf32>}> : () -> tensor<2xf32>
    %2 = "graph.gemm"(%arg0, %0, %1) <{alpha = 2.0 : f32, beta = 0.5 : f32, cim.input_range = array<f64: -64.0, 191.0>}> : (tensor<?x3xf32>, tensor<3x2xf32>, tensor<2xf32>) -> tensor<?x2xf32> loc("fc")
    %3 = "graph.relu"(%2) : (tensor<?x2xf32>) -> tensor<?x2xf32> loc("relu")
    %4 = "graph.gemm"(%arg1, %0) <{cim.input_range = array<f64: -64.0, 191.0>, transA = 1 : i64}> : (tensor<3x4xf32>, tensor<3x2xf32>) -> tensor<4x2xf32> loc("fc_transposed")
    "func.return"(%3, %4) : (tensor<?x2xf32>, tensor<4x2xf32>) -> ()
  }) : () -> ()

// Conv with 2 groups of 2 channels, 1x1 kernel, pads 1, stride 2, calibrated to [-5, 250]: zero point 5, which
// padding reads too (fill). Filter m of group g = m // 2 reads only channels 2g, 2g + 1, so the [4, 4] matrix is
// block-diagonal: columns (filters) [7, 1, 0, 0], [-2, 7, 0, 0], [0, 0, 7, 0], [0, 0, 3, -7]; 8 true weights.
// The [N, H, W, M] result is transposed back to [N, M, H, W] on a digital unit.
// CHECK-LABEL: sym_name = "grouped_conv"
// CHECK:       %[[CODES:.*]] = "cim.quantize"(%arg0) <{bits = 8 : i64, scale = 1.0 : f32, zero_point = 5 : i64}> : (tensor<1x4x3x3xf32>) -> tensor<1x4x3x3xui8> loc("conv")
// CHECK-NEXT:  %[[PATCHES:.*]] = "cim.im2col"(%[[CODES]]) <{dilations = array<i64: 1, 1>, fill = 5 : i64, kernel_shape = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, strides = array<i64: 2, 2>}> : (tensor<1x4x3x3xui8>) -> tensor<1x3x3x4xui8> loc("conv")
// CHECK-NEXT:  %[[ACC:.*]] = "cim.linear"(%[[PATCHES]]) <{input_bits = 8 : i64, weight_bits = 4 : i64, weights = dense<{{\[}}[7, -2, 0, 0], [1, 7, 0, 0], [0, 0, 7, 3], [0, 0, 0, -7]]> : tensor<4x4xi8>}>
// CHECK-NEXT:  %[[Y:.*]] = "cim.dequantize"(%[[ACC]]) <{cim.kind = "grouped conv", cim.weights = 8 : i64, scale = dense<1.0> : tensor<4xf64>, weight_sums = dense<[8, 5, 7, -4]> : tensor<4xi64>, zero_point = 5 : i64}> : (tensor<1x3x3x4xi32>) -> tensor<1x3x3x4xf32> loc("conv")
// CHECK-NEXT:  %[[NCHW:.*]] = "cim.digital"(%[[Y]]) ({
// CHECK-NEXT:  ^bb0(%[[ARG:arg[0-9]+]]: tensor<1x3x3x4xf32>):
// CHECK-NEXT:    %[[T:[0-9]+]] = "graph.transpose"(%[[ARG]]) <{perm = array<i64: 0, 3, 1, 2>}> : (tensor<1x3x3x4xf32>) -> tensor<1x4x3x3xf32> loc("conv")
// CHECK-NEXT:    "cim.yield"(%[[T]])
// CHECK-NEXT:  }) : (tensor<1x3x3x4xf32>) -> tensor<1x4x3x3xf32> loc("conv")
// CHECK-NEXT:  "func.return"(%[[NCHW]])
  "func.func"() <{function_type = (tensor<1x4x3x3xf32>) -> tensor<1x4x3x3xf32>, sym_name = "grouped_conv"}> ({
  ^bb0(%arg0: tensor<1x4x3x3xf32>):
    %0 = "graph.constant"() <{value = dense<[[[[7.0]], [[1.0]]], [[[-2.0]], [[7.0]]], [[[7.0]], [[0.0]]], [[[3.0]], [[-7.0]]]]> : tensor<4x2x1x1xf32>}> : () -> tensor<4x2x1x1xf32>
    %1 = "graph.conv"(%arg0, %0) <{cim.input_range = array<f64: -5.0, 250.0>, group = 2 : i64, pads = array<i64: 1, 1, 1, 1>, strides = array<i64: 2, 2>}> : (tensor<1x4x3x3xf32>, tensor<4x2x1x1xf32>) -> tensor<1x4x3x3xf32> loc("conv")
    "func.return"(%1) : (tensor<1x4x3x3xf32>) -> ()
  }) : () -> ()

// MatMul [2, 3, 4] @ [4, 2] calibrated to [-10, 245] (zero point 10): columns [0.5, -1, 0.25, 3.5] (scale 0.5)
// and [7, 0, -3.5, 1] (scale 1) round half to even: [1, -2, 0, 7] and [7, 0, -4, 1]. An activation x activation
// MatMul stays digital.
// CHECK-LABEL: sym_name = "matmul"
// CHECK:       %[[CODES:.*]] = "cim.quantize"(%arg0) <{bits = 8 : i64, scale = 1.0 : f32, zero_point = 10 : i64}> : (tensor<2x3x4xf32>) -> tensor<2x3x4xui8> loc("proj")
// CHECK-NEXT:  %[[ACC:.*]] = "cim.linear"(%[[CODES]]) <{input_bits = 8 : i64, weight_bits = 4 : i64, weights = dense<{{\[}}[1, 7], [-2, 0], [0, -4], [7, 1]]> : tensor<4x2xi8>}> : (tensor<2x3x4xui8>) -> tensor<2x3x2xi32> loc("proj")
// CHECK-NEXT:  %[[Y:.*]] = "cim.dequantize"(%[[ACC]]) <{cim.kind = "matmul", cim.weights = 8 : i64, scale = dense<[0.5, 1.0]> : tensor<2xf64>, weight_sums = dense<[6, 4]> : tensor<2xi64>, zero_point = 10 : i64}> : (tensor<2x3x2xi32>) -> tensor<2x3x2xf32> loc("proj")
// CHECK-NEXT:  %[[SCORES:.*]] = "cim.digital"(%arg1, %arg2) <{cim.reason = "weights are not constant"}> ({
// CHECK:         "graph.matmul"(%{{arg[0-9]+}}, %{{arg[0-9]+}}) {{.*}} loc("scores")
// CHECK:       "func.return"(%[[Y]], %[[SCORES]])
  "func.func"() <{function_type = (tensor<2x3x4xf32>, tensor<2x3x4xf32>, tensor<2x4x5xf32>) -> (tensor<2x3x2xf32>, tensor<2x3x5xf32>), sym_name = "matmul"}> ({
  ^bb0(%arg0: tensor<2x3x4xf32>, %arg1: tensor<2x3x4xf32>, %arg2: tensor<2x4x5xf32>):
    %0 = "graph.constant"() <{value = dense<[[0.5, 7.0], [-1.0, 0.0], [0.25, -3.5], [3.5, 1.0]]> : tensor<4x2xf32>}> : () -> tensor<4x2xf32>
    %1 = "graph.matmul"(%arg0, %0) <{cim.input_range = array<f64: -10.0, 245.0>}> : (tensor<2x3x4xf32>, tensor<4x2xf32>) -> tensor<2x3x2xf32> loc("proj")
    %2 = "graph.matmul"(%arg1, %arg2) : (tensor<2x3x4xf32>, tensor<2x4x5xf32>) -> tensor<2x3x5xf32> loc("scores")
    "func.return"(%1, %2) : (tensor<2x3x2xf32>, tensor<2x3x5xf32>) -> ()
  }) : () -> ()

// Linear as PyTorch exports it: MatMul (the Gemm's B, same codes and integer weights), then Add with the bias
// [1, -1] as first operand, then Mul by [[2, 0.5]]: both are done by the dequantization, scale [0.25, 0.5] *
// [2, 0.5] = [0.5, 0.25] and bias [1, -1] * [2, 0.5] = [2, -0.5]; cim.fused names the absorbed nodes.
// CHECK-LABEL: sym_name = "linear_bias"
// CHECK:       %[[CODES:.*]] = "cim.quantize"(%arg0) <{bits = 8 : i64, scale = 1.0 : f32, zero_point = 64 : i64}> : (tensor<?x3xf32>) -> tensor<?x3xui8> loc("fc")
// CHECK-NEXT:  %[[ACC:.*]] = "cim.linear"(%[[CODES]]) <{input_bits = 8 : i64, weight_bits = 4 : i64, weights = dense<{{\[}}[7, -7], [-2, 2], [1, 0]]> : tensor<3x2xi8>}> : (tensor<?x3xui8>) -> tensor<?x2xi32> loc("fc")
// CHECK-NEXT:  %[[Y:.*]] = "cim.dequantize"(%[[ACC]]) <{bias = dense<[2.0, -0.5]> : tensor<2xf32>, cim.fused = ["fc_bias", "fc_scale"], cim.kind = "matmul", cim.weights = 6 : i64, scale = dense<[0.5, 0.25]> : tensor<2xf64>, weight_sums = dense<[6, -5]> : tensor<2xi64>, zero_point = 64 : i64}> : (tensor<?x2xi32>) -> tensor<?x2xf32> loc("fc")
// CHECK-NEXT:  "func.return"(%[[Y]])
  "func.func"() <{function_type = (tensor<?x3xf32>) -> tensor<?x2xf32>, sym_name = "linear_bias"}> ({
  ^bb0(%arg0: tensor<?x3xf32>):
    %0 = "graph.constant"() <{value = dense<[[1.75, -3.5], [-0.5, 1.0], [0.25, 0.0]]> : tensor<3x2xf32>}> : () -> tensor<3x2xf32>
    %1 = "graph.constant"() <{value = dense<[1.0, -1.0]> : tensor<2xf32>}> : () -> tensor<2xf32>
    %2 = "graph.constant"() <{value = dense<[[2.0, 0.5]]> : tensor<1x2xf32>}> : () -> tensor<1x2xf32>
    %3 = "graph.matmul"(%arg0, %0) <{cim.input_range = array<f64: -64.0, 191.0>}> : (tensor<?x3xf32>, tensor<3x2xf32>) -> tensor<?x2xf32> loc("fc")
    %4 = "graph.add"(%1, %3) : (tensor<2xf32>, tensor<?x2xf32>) -> tensor<?x2xf32> loc("fc_bias")
    %5 = "graph.mul"(%4, %2) : (tensor<?x2xf32>, tensor<1x2xf32>) -> tensor<?x2xf32> loc("fc_scale")
    "func.return"(%5) : (tensor<?x2xf32>) -> ()
  }) : () -> ()

// ConvTranspose, kernel 2 = stride 2, of one channel into two, calibrated to [-5, 250] (scale 1, zero point 5):
// each input pixel is one vector of 1 code (a 1 x 1 im2col); the 8 columns are (output channel, kernel row,
// kernel column): weights [7, -7, 3.5, 0, 1.75, -0.875, 0, 7] with scales [1, 1, 0.5, 1, 0.25, 0.125, 1, 1], so
// all but the zeros are +-7. The result goes back to channels-first, then DepthToSpace (CRD) places each pixel's
// 2 x 2 block. The Sub of 0.5 after it is the dequantization's bias.
// CHECK-LABEL: sym_name = "conv_transpose"
// CHECK:       %[[CODES:.*]] = "cim.quantize"(%arg0) <{bits = 8 : i64, scale = 1.0 : f32, zero_point = 5 : i64}> : (tensor<?x1x2x3xf32>) -> tensor<?x1x2x3xui8> loc("up")
// CHECK-NEXT:  %[[PIXELS:.*]] = "cim.im2col"(%[[CODES]]) <{dilations = array<i64: 1, 1>, fill = 5 : i64, kernel_shape = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, strides = array<i64: 1, 1>}> : (tensor<?x1x2x3xui8>) -> tensor<?x2x3x1xui8> loc("up")
// CHECK-NEXT:  %[[ACC:.*]] = "cim.linear"(%[[PIXELS]]) <{input_bits = 8 : i64, weight_bits = 4 : i64, weights = dense<{{\[}}[7, -7, 7, 0, 7, -7, 0, 7]]> : tensor<1x8xi8>}> : (tensor<?x2x3x1xui8>) -> tensor<?x2x3x8xi32> loc("up")
// CHECK-NEXT:  %[[Y:.*]] = "cim.dequantize"(%[[ACC]]) <{bias = dense<-0.5> : tensor<8xf32>, cim.fused = ["shift"], cim.kind = "conv transpose", cim.weights = 8 : i64, scale = dense<[1.0, 1.0, 0.5, 1.0, 0.25, 0.125, 1.0, 1.0]> : tensor<8xf64>, weight_sums = dense<[7, -7, 7, 0, 7, -7, 0, 7]> : tensor<8xi64>, zero_point = 5 : i64}> : (tensor<?x2x3x8xi32>) -> tensor<?x2x3x8xf32> loc("up")
// CHECK-NEXT:  %[[NCHW:.*]] = "cim.digital"(%[[Y]]) ({
// CHECK:         "graph.transpose"(%{{.*}}) <{perm = array<i64: 0, 3, 1, 2>}> : (tensor<?x2x3x8xf32>) -> tensor<?x8x2x3xf32> loc("up")
// CHECK:       %[[UP:.*]] = "cim.digital"(%[[NCHW]]) ({
// CHECK:         "graph.depth_to_space"(%{{.*}}) <{blocksize = 2 : i64, mode = "CRD"}> : (tensor<?x8x2x3xf32>) -> tensor<?x2x4x6xf32> loc("up")
// CHECK:       "func.return"(%[[UP]])
  "func.func"() <{function_type = (tensor<?x1x2x3xf32>) -> tensor<?x2x4x6xf32>, sym_name = "conv_transpose"}> ({
  ^bb0(%arg0: tensor<?x1x2x3xf32>):
    %0 = "graph.constant"() <{value = dense<[[[[7.0, -7.0], [3.5, 0.0]], [[1.75, -0.875], [0.0, 7.0]]]]> : tensor<1x2x2x2xf32>}> : () -> tensor<1x2x2x2xf32>
    %1 = "graph.constant"() <{value = dense<0.5> : tensor<f32>}> : () -> tensor<f32>
    %2 = "graph.conv_transpose"(%arg0, %0) <{cim.input_range = array<f64: -5.0, 250.0>, strides = array<i64: 2, 2>}> : (tensor<?x1x2x3xf32>, tensor<1x2x2x2xf32>) -> tensor<?x2x4x6xf32> loc("up")
    %3 = "graph.sub"(%2, %1) : (tensor<?x2x4x6xf32>, tensor<f32>) -> tensor<?x2x4x6xf32> loc("shift")
    "func.return"(%3) : (tensor<?x2x4x6xf32>) -> ()
  }) : () -> ()

// A QDQ Conv (onnxruntime's quantizer writes these): the model's own quantization is kept. The input is int8 with
// scale 0.5 and zero point -3, so its unsigned codes have zero point -3 + 128 = 125; the weights are the int8
// constant (zero point 0) as [C, M] = [[3, 127], [-4, -128]], 8 bits, with per-filter scales 0.5 * [0.25, 0.125];
// the int32 bias dequantizes to [4 * 0.125, -8 * 0.0625]. The input QuantizeLinear/DequantizeLinear and the weight
// DequantizeLinear are gone; the output's stay as digital requantization.
// CHECK-LABEL: sym_name = "qdq_conv"
// CHECK-NOT:   "graph.
// CHECK:       %[[CODES:.*]] = "cim.quantize"(%arg0) <{bits = 8 : i64, scale = 0.5 : f32, zero_point = 125 : i64}> : (tensor<1x2x3x3xf32>) -> tensor<1x2x3x3xui8> loc("qconv")
// CHECK-NEXT:  %[[PATCHES:.*]] = "cim.im2col"(%[[CODES]]) <{dilations = array<i64: 1, 1>, fill = 125 : i64, kernel_shape = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, strides = array<i64: 1, 1>}>
// CHECK-NEXT:  %[[ACC:.*]] = "cim.linear"(%[[PATCHES]]) <{input_bits = 8 : i64, weight_bits = 8 : i64, weights = dense<{{\[}}[3, 127], [-4, -128]]> : tensor<2x2xi8>}>
// CHECK-NEXT:  %[[Y:.*]] = "cim.dequantize"(%[[ACC]]) <{bias = dense<[0.5, -0.5]> : tensor<2xf32>, cim.kind = "conv", cim.weights = 4 : i64, scale = dense<[0.125, 0.0625]> : tensor<2xf64>, weight_sums = dense<-1> : tensor<2xi64>, zero_point = 125 : i64}>
// CHECK-NEXT:  %[[NCHW:.*]] = "cim.digital"(%[[Y]]) ({
// CHECK:         "graph.transpose"
// CHECK-NOT:   _linear"
// CHECK:       %[[S:.*]] = "graph.constant"() <{value = dense<0.25> : tensor<f32>}>
// CHECK-NEXT:  %[[Z:.*]] = "graph.constant"() <{value = dense<0> : tensor<i8>}>
// CHECK-NEXT:  %[[Q:.*]] = "cim.digital"(%[[NCHW]], %[[S]], %[[Z]]) ({
// CHECK:         "graph.quantize_linear"(%{{arg[0-9]+}}, %{{arg[0-9]+}}, %{{arg[0-9]+}}) {{.*}} loc("y_q")
// CHECK:       %[[DQ:.*]] = "cim.digital"(%[[Q]], %[[S]], %[[Z]]) ({
// CHECK:         "graph.dequantize_linear"(%{{arg[0-9]+}}, %{{arg[0-9]+}}, %{{arg[0-9]+}}) {{.*}} loc("y_dq")
// CHECK:       "func.return"(%[[DQ]])
  "func.func"() <{function_type = (tensor<1x2x3x3xf32>) -> tensor<1x2x3x3xf32>, sym_name = "qdq_conv"}> ({
  ^bb0(%arg0: tensor<1x2x3x3xf32>):
    %0 = "graph.constant"() <{value = dense<0.5> : tensor<f32>}> : () -> tensor<f32>
    %1 = "graph.constant"() <{value = dense<-3> : tensor<i8>}> : () -> tensor<i8>
    %2 = "graph.quantize_linear"(%arg0, %0, %1) : (tensor<1x2x3x3xf32>, tensor<f32>, tensor<i8>) -> tensor<1x2x3x3xi8> loc("x_q")
    %3 = "graph.dequantize_linear"(%2, %0, %1) : (tensor<1x2x3x3xi8>, tensor<f32>, tensor<i8>) -> tensor<1x2x3x3xf32> loc("x_dq")
    %4 = "graph.constant"() <{value = dense<[[[[3]], [[-4]]], [[[127]], [[-128]]]]> : tensor<2x2x1x1xi8>}> : () -> tensor<2x2x1x1xi8>
    %5 = "graph.constant"() <{value = dense<[0.25, 0.125]> : tensor<2xf32>}> : () -> tensor<2xf32>
    %6 = "graph.constant"() <{value = dense<0> : tensor<2xi8>}> : () -> tensor<2xi8>
    %7 = "graph.dequantize_linear"(%4, %5, %6) <{axis = 0 : i64}> : (tensor<2x2x1x1xi8>, tensor<2xf32>, tensor<2xi8>) -> tensor<2x2x1x1xf32> loc("w_dq")
    %8 = "graph.constant"() <{value = dense<[4, -8]> : tensor<2xi32>}> : () -> tensor<2xi32>
    %9 = "graph.constant"() <{value = dense<[0.125, 0.0625]> : tensor<2xf32>}> : () -> tensor<2xf32>
    %10 = "graph.dequantize_linear"(%8, %9) <{axis = 0 : i64}> : (tensor<2xi32>, tensor<2xf32>) -> tensor<2xf32> loc("b_dq")
    %11 = "graph.conv"(%3, %7, %10) : (tensor<1x2x3x3xf32>, tensor<2x2x1x1xf32>, tensor<2xf32>) -> tensor<1x2x3x3xf32> loc("qconv")
    %12 = "graph.constant"() <{value = dense<0.25> : tensor<f32>}> : () -> tensor<f32>
    %13 = "graph.constant"() <{value = dense<0> : tensor<i8>}> : () -> tensor<i8>
    %14 = "graph.quantize_linear"(%11, %12, %13) : (tensor<1x2x3x3xf32>, tensor<f32>, tensor<i8>) -> tensor<1x2x3x3xi8> loc("y_q")
    %15 = "graph.dequantize_linear"(%14, %12, %13) : (tensor<1x2x3x3xi8>, tensor<f32>, tensor<i8>) -> tensor<1x2x3x3xf32> loc("y_dq")
    "func.return"(%15) : (tensor<1x2x3x3xf32>) -> ()
  }) : () -> ()
}) : () -> ()
