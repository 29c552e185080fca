// RUN: cimc opt %s --passes 'bit-slice,replicate{budget=56}' | filecheck %s
// RUN: cimc opt %s --passes 'bit-slice,replicate' | filecheck %s --check-prefix=AUTO
// RUN: not cimc opt %s --passes 'bit-slice,replicate{budget=23}' 2>&1 | filecheck %s --check-prefix=SMALL

// Two conv layers and a dense one, each one row block of 8-bit weights on 2-bit cells as a differential pair:
// 2 x 4 = 8 arrays, 24 in all. Conv A makes 8 x 8 = 64 output pixels, conv B 4 x 4 = 16, each read in 8 bit
// planes: 512 and 128 MVM rounds per input. A budget of 56 pays for 4 more copies of 8 arrays: A gets copies 2, 3
// and 4 (512 -> 256 -> 170.7 -> 128), ties with B at 128 and, first in the module, wins the fourth (102.4). B and
// the dense layer (never replicated: its arrays are read once per plane anyway) stay at one copy.
// CHECK:      "cim.bit_planes"(%1)
// CHECK-NEXT: "cim.program"() <{array_cols = 64 : i64, array_rows = 64 : i64, cell_bits = 2 : i64, levels = dense_resource<A.r0.levels> : tensor<2x4x9x1xui8>, replication = 5 : i64, sign_encoding = "differential", weight_bits = 8 : i64}> {{.*}} loc("A")
// CHECK:      "cim.program"() <{array_cols = 64 : i64, array_rows = 64 : i64, cell_bits = 2 : i64, levels = dense_resource<B.r0.levels> : tensor<2x4x9x1xui8>, sign_encoding = "differential", weight_bits = 8 : i64}> {{.*}} loc("B")
// CHECK:      "cim.program"() <{array_cols = 64 : i64, array_rows = 64 : i64, cell_bits = 2 : i64, levels = dense_resource<fc.r0.levels> : tensor<2x4x4x1xui8>, sign_encoding = "differential", weight_bits = 8 : i64}> {{.*}} loc("fc")

// Without a budget: twice the 24 arrays, so 3 more copies, all A's (A's fifth would reach 56 > 48).
// AUTO:      levels = dense_resource<A.r0.levels> : tensor<2x4x9x1xui8>, replication = 4 : i64, sign_encoding
// AUTO:      levels = dense_resource<B.r0.levels> : tensor<2x4x9x1xui8>, sign_encoding
// AUTO:      levels = dense_resource<fc.r0.levels> : tensor<2x4x4x1xui8>, sign_encoding

// SMALL: cimc: error: pass 'replicate': the array budget 23 is below the 24 arrays the module needs unreplicated
"builtin.module"() ({
  "func.func"() <{arg_attrs = [{graph.name = "a"}, {graph.name = "b"}, {graph.name = "c"}], function_type = (tensor<?x1x8x8xui8>, tensor<?x1x4x4xui8>, tensor<?x4xui8>) -> (tensor<?x8x8x1xi32>, tensor<?x4x4x1xi32>, tensor<?x1xi32>), res_attrs = [{graph.name = "y0"}, {graph.name = "y1"}, {graph.name = "y2"}], sym_name = "main"}> ({
  ^bb0(%arg0: tensor<?x1x8x8xui8>, %arg1: tensor<?x1x4x4xui8>, %arg2: tensor<?x4xui8>):
    %0 = "cim.im2col"(%arg0) <{dilations = array<i64: 1, 1>, kernel_shape = array<i64: 3, 3>, pads = array<i64: 1, 1, 1, 1>, strides = array<i64: 1, 1>}> : (tensor<?x1x8x8xui8>) -> tensor<?x8x8x9xui8>
    %1 = "cim.linear"(%0) <{input_bits = 8 : i64, row_offset = 0 : i64, weight_bits = 8 : i64, weights = dense<[[1], [-2], [3], [-4], [5], [-6], [7], [-8], [9]]> : tensor<9x1xi8>}> : (tensor<?x8x8x9xui8>) -> tensor<?x8x8x1xi32> loc("A")
    %2 = "cim.im2col"(%arg1) <{dilations = array<i64: 1, 1>, kernel_shape = array<i64: 3, 3>, pads = array<i64: 1, 1, 1, 1>, strides = array<i64: 1, 1>}> : (tensor<?x1x4x4xui8>) -> tensor<?x4x4x9xui8>
    %3 = "cim.linear"(%2) <{input_bits = 8 : i64, row_offset = 0 : i64, weight_bits = 8 : i64, weights = dense<[[-1], [2], [-3], [4], [-5], [6], [-7], [8], [-9]]> : tensor<9x1xi8>}> : (tensor<?x4x4x9xui8>) -> tensor<?x4x4x1xi32> loc("B")
    %4 = "cim.linear"(%arg2) <{input_bits = 8 : i64, row_offset = 0 : i64, weight_bits = 8 : i64, weights = dense<[[10], [-20], [30], [-40]]> : tensor<4x1xi8>}> : (tensor<?x4xui8>) -> tensor<?x1xi32> loc("fc")
    "func.return"(%1, %3, %4) : (tensor<?x8x8x1xi32>, tensor<?x4x4x1xi32>, tensor<?x1xi32>) -> ()
  }) : () -> ()
}) : () -> ()
