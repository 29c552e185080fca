// RUN: cimc opt %s --passes fold-batch-norm | filecheck %s

// Worked by hand. The batch norm has gamma = [1, 3], beta = [0.25, -2], mean = [1.5, -1], var = [3.75, 0.75] and
// epsilon = 0.25, so s = gamma / sqrt(var + epsilon) = [1/2, 3/1] = [0.5, 3] and t = beta - mean * s = [-0.5, 1].
//
// Conv: each output channel's filter is scaled by s and the bias becomes (b - mean) * s + beta:
//   W = [[2, 4], [-1, 0.5]] (as 2x2x1x1) -> W' = [[2*0.5, 4*0.5], [-1*3, 0.5*3]] = [[1, 2], [-3, 1.5]]
//   b = [0.5, 1]                          -> b' = [(0.5-1.5)*0.5 + 0.25, (1+1)*3 - 2] = [-0.25, 4]
// CHECK-LABEL: sym_name = "conv"
// CHECK:       ^bb0(%arg0: tensor<1x2x3x3xf32>):
// CHECK-NEXT:    %0 = "graph.constant"() <{value = dense<{{\[\[\[\[1\.0\]\], \[\[2\.0\]\]\], \[\[\[-3\.0\]\], \[\[1\.5\]\]\]\]}}> : tensor<2x2x1x1xf32>}>
// CHECK-NEXT:    %1 = "graph.constant"() <{value = dense<[-0.25, 4.0]> : tensor<2xf32>}>
// CHECK-NEXT:    %2 = "graph.conv"(%arg0, %0, %1) <{kernel_shape = array<i64: 1, 1>}> : (tensor<1x2x3x3xf32>, tensor<2x2x1x1xf32>, tensor<2xf32>) -> tensor<1x2x3x3xf32> loc("conv")
// CHECK-NEXT:    "func.return"(%2)
"builtin.module"() ({
  "func.func"() <{function_type = (tensor<1x2x3x3xf32>) -> tensor<1x2x3x3xf32>, sym_name = "conv"}> ({
  ^bb0(%arg0: tensor<1x2x3x3xf32>):
    %0 = "graph.constant"() <{value = dense<[[[[2.0]], [[4.0]]], [[[-1.0]], [[0.5]]]]> : tensor<2x2x1x1xf32>}> : () -> tensor<2x2x1x1xf32>
    %1 = "graph.constant"() <{value = dense<[0.5, 1.0]> : tensor<2xf32>}> : () -> tensor<2xf32>
    %2 = "graph.conv"(%arg0, %0, %1) <{kernel_shape = array<i64: 1, 1>}> : (tensor<1x2x3x3xf32>, tensor<2x2x1x1xf32>, tensor<2xf32>) -> tensor<1x2x3x3xf32> loc("conv")
    %3 = "graph.constant"() <{value = dense<[1.0, 3.0]> : tensor<2xf32>}> : () -> tensor<2xf32>
    %4 = "graph.constant"() <{value = dense<[0.25, -2.0]> : tensor<2xf32>}> : () -> tensor<2xf32>
    %5 = "graph.constant"() <{value = dense<[1.5, -1.0]> : tensor<2xf32>}> : () -> tensor<2xf32>
    %6 = "graph.constant"() <{value = dense<[3.75, 0.75]> : tensor<2xf32>}> : () -> tensor<2xf32>
    %7 = "graph.batch_norm"(%2, %3, %4, %5, %6) <{epsilon = 0.25 : f32}> : (tensor<1x2x3x3xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>) -> tensor<1x2x3x3xf32> loc("bn")
    "func.return"(%7) : (tensor<1x2x3x3xf32>) -> ()
  }) : () -> ()

// Gemm with transB = 1 (B is N x K, one row per output column), alpha = 0.5 and beta = 2:
//   B = [[1, 2, 3], [4, 5, 6]] -> B' = [[0.5, 1, 1.5], [12, 15, 18]] (row n scaled by s[n])
//   C = [1, -1]                -> C' = beta * C * s + t = [2*1*0.5 - 0.5, 2*(-1)*3 + 1] = [0.5, -5], and beta = 1
// CHECK-LABEL: sym_name = "gemm"
// CHECK:       ^bb0(%arg0: tensor<4x3xf32>):
// CHECK-NEXT:    %0 = "graph.constant"() <{value = dense<{{\[}}[0.5, 1.0, 1.5], [12.0, 15.0, 18.0]]> : tensor<2x3xf32>}>
// CHECK-NEXT:    %1 = "graph.constant"() <{value = dense<[0.5, -5.0]> : tensor<2xf32>}>
// CHECK-NEXT:    %2 = "graph.gemm"(%arg0, %0, %1) <{alpha = 0.5 : f32, beta = 1.0 : f32, transB = 1 : i64}> {{.*}} loc("gemm")
// CHECK-NEXT:    "func.return"(%2)
  "func.func"() <{function_type = (tensor<4x3xf32>) -> tensor<4x2xf32>, sym_name = "gemm"}> ({
  ^bb0(%arg0: tensor<4x3xf32>):
    %0 = "graph.constant"() <{value = dense<[[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]> : tensor<2x3xf32>}> : () -> tensor<2x3xf32>
    %1 = "graph.constant"() <{value = dense<[1.0, -1.0]> : tensor<2xf32>}> : () -> tensor<2xf32>
    %2 = "graph.gemm"(%arg0, %0, %1) <{alpha = 0.5 : f32, beta = 2.0 : f32, transB = 1 : i64}> : (tensor<4x3xf32>, tensor<2x3xf32>, tensor<2xf32>) -> tensor<4x2xf32> loc("gemm")
    %3 = "graph.constant"() <{value = dense<[1.0, 3.0]> : tensor<2xf32>}> : () -> tensor<2xf32>
    %4 = "graph.constant"() <{value = dense<[0.25, -2.0]> : tensor<2xf32>}> : () -> tensor<2xf32>
    %5 = "graph.constant"() <{value = dense<[1.5, -1.0]> : tensor<2xf32>}> : () -> tensor<2xf32>
    %6 = "graph.constant"() <{value = dense<[3.75, 0.75]> : tensor<2xf32>}> : () -> tensor<2xf32>
    %7 = "graph.batch_norm"(%2, %3, %4, %5, %6) <{epsilon = 0.25 : f32}> : (tensor<4x2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>) -> tensor<4x2xf32> loc("bn")
    "func.return"(%7) : (tensor<4x2xf32>) -> ()
  }) : () -> ()

// MatMul with a constant 2-D weight: its columns are the channels, scaled by s, and t becomes a bias Add:
//   W = [[1, -1], [2, 0.5], [0, 4]] -> W' = [[0.5, -3], [1, 1.5], [0, 12]];  bias = t = [-0.5, 1]
// CHECK-LABEL: sym_name = "matmul"
// CHECK:       ^bb0(%arg0: tensor<?x3xf32>):
// CHECK-NEXT:    %0 = "graph.constant"() <{value = dense<{{\[}}[0.5, -3.0], [1.0, 1.5], [0.0, 12.0]]> : tensor<3x2xf32>}>
// CHECK-NEXT:    %1 = "graph.matmul"(%arg0, %0) : (tensor<?x3xf32>, tensor<3x2xf32>) -> tensor<?x2xf32> loc("matmul")
// CHECK-NEXT:    %2 = "graph.constant"() <{value = dense<[-0.5, 1.0]> : tensor<2xf32>}>
// CHECK-NEXT:    %3 = "graph.add"(%1, %2) : (tensor<?x2xf32>, tensor<2xf32>) -> tensor<?x2xf32> loc("matmul")
// CHECK-NEXT:    "func.return"(%3)
  "func.func"() <{function_type = (tensor<?x3xf32>) -> tensor<?x2xf32>, sym_name = "matmul"}> ({
  ^bb0(%arg0: tensor<?x3xf32>):
    %0 = "graph.constant"() <{value = dense<[[1.0, -1.0], [2.0, 0.5], [0.0, 4.0]]> : tensor<3x2xf32>}> : () -> tensor<3x2xf32>
    %1 = "graph.matmul"(%arg0, %0) : (tensor<?x3xf32>, tensor<3x2xf32>) -> tensor<?x2xf32> loc("matmul")
    %3 = "graph.constant"() <{value = dense<[1.0, 3.0]> : tensor<2xf32>}> : () -> tensor<2xf32>
    %4 = "graph.constant"() <{value = dense<[0.25, -2.0]> : tensor<2xf32>}> : () -> tensor<2xf32>
    %5 = "graph.constant"() <{value = dense<[1.5, -1.0]> : tensor<2xf32>}> : () -> tensor<2xf32>
    %6 = "graph.constant"() <{value = dense<[3.75, 0.75]> : tensor<2xf32>}> : () -> tensor<2xf32>
    %7 = "graph.batch_norm"(%1, %3, %4, %5, %6) <{epsilon = 0.25 : f32}> : (tensor<?x2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>) -> tensor<?x2xf32> loc("bn")
    "func.return"(%7) : (tensor<?x2xf32>) -> ()
  }) : () -> ()

// Left alone: a batch norm whose Conv result is also returned (its unnormalized value is needed), and one after
// an op it cannot fold into.
// CHECK-LABEL: sym_name = "unfoldable"
// CHECK:         "graph.conv"
// CHECK:         "graph.batch_norm"({{.*}} loc("bn_shared")
// CHECK:         "graph.relu"
// CHECK:         "graph.batch_norm"({{.*}} loc("bn_after_relu")
  "func.func"() <{function_type = (tensor<1x2x3x3xf32>) -> (tensor<1x2x3x3xf32>, tensor<1x2x3x3xf32>, tensor<1x2x3x3xf32>), sym_name = "unfoldable"}> ({
  ^bb0(%arg0: tensor<1x2x3x3xf32>):
    %0 = "graph.constant"() <{value = dense<[[[[2.0]], [[4.0]]], [[[-1.0]], [[0.5]]]]> : tensor<2x2x1x1xf32>}> : () -> tensor<2x2x1x1xf32>
    %1 = "graph.conv"(%arg0, %0) : (tensor<1x2x3x3xf32>, tensor<2x2x1x1xf32>) -> tensor<1x2x3x3xf32> loc("conv")
    %3 = "graph.constant"() <{value = dense<[1.0, 3.0]> : tensor<2xf32>}> : () -> tensor<2xf32>
    %4 = "graph.constant"() <{value = dense<[0.25, -2.0]> : tensor<2xf32>}> : () -> tensor<2xf32>
    %5 = "graph.constant"() <{value = dense<[1.5, -1.0]> : tensor<2xf32>}> : () -> tensor<2xf32>
    %6 = "graph.constant"() <{value = dense<[3.75, 0.75]> : tensor<2xf32>}> : () -> tensor<2xf32>
    %7 = "graph.batch_norm"(%1, %3, %4, %5, %6) <{epsilon = 0.25 : f32}> : (tensor<1x2x3x3xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>) -> tensor<1x2x3x3xf32> loc("bn_shared")
    %8 = "graph.relu"(%arg0) : (tensor<1x2x3x3xf32>) -> tensor<1x2x3x3xf32> loc("relu")
    %9 = "graph.batch_norm"(%8, %3, %4, %5, %6) <{epsilon = 0.25 : f32}> : (tensor<1x2x3x3xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>) -> tensor<1x2x3x3xf32> loc("bn_after_relu")
    "func.return"(%1, %7, %9) : (tensor<1x2x3x3xf32>, tensor<1x2x3x3xf32>, tensor<1x2x3x3xf32>) -> ()
  }) : () -> ()
}) : () -> ()
