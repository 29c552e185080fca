// RUN: cimc opt %s --passes fold-constants | filecheck %s
// RUN: cimc opt %s --passes 'fold-constants{max-elements=4}' | filecheck %s --check-prefix=CAP

// The exporter's flatten: Shape -> Gather -> Unsqueeze -> Concat -> Reshape. The shape of a static tensor is
// known, so the whole chain folds to one constant shape, and the constants it consumed are gone.
// CHECK-LABEL: sym_name = "flatten"
// CHECK:       ^bb0(%arg0: tensor<2x3x4xf32>):
// CHECK-NEXT:    %0 = "graph.constant"() <{value = dense<[2, -1]> : tensor<2xi64>}> : () -> tensor<2xi64> loc("concat")
// CHECK-NEXT:    %1 = "graph.reshape"(%arg0, %0) : (tensor<2x3x4xf32>, tensor<2xi64>) -> tensor<?x?xf32> loc("reshape")
// CHECK-NEXT:    "func.return"(%1)
"builtin.module"() ({
  "func.func"() <{function_type = (tensor<2x3x4xf32>) -> tensor<?x?xf32>, sym_name = "flatten"}> ({
  ^bb0(%arg0: tensor<2x3x4xf32>):
    %0 = "graph.shape"(%arg0) : (tensor<2x3x4xf32>) -> tensor<3xi64> loc("shape")
    %1 = "graph.constant"() <{value = dense<0> : tensor<i64>}> : () -> tensor<i64>
    %2 = "graph.gather"(%0, %1) <{axis = 0 : i64}> : (tensor<3xi64>, tensor<i64>) -> tensor<i64> loc("gather")
    %3 = "graph.constant"() <{value = dense<0> : tensor<1xi64>}> : () -> tensor<1xi64>
    %4 = "graph.unsqueeze"(%2, %3) : (tensor<i64>, tensor<1xi64>) -> tensor<1xi64> loc("unsqueeze")
    %5 = "graph.constant"() <{value = dense<-1> : tensor<1xi64>}> : () -> tensor<1xi64>
    %6 = "graph.concat"(%4, %5) <{axis = 0 : i64}> : (tensor<1xi64>, tensor<1xi64>) -> tensor<2xi64> loc("concat")
    %7 = "graph.reshape"(%arg0, %6) : (tensor<2x3x4xf32>, tensor<2xi64>) -> tensor<?x?xf32> loc("reshape")
    "func.return"(%7) : (tensor<?x?xf32>) -> ()
  }) : () -> ()

// With a dynamic batch, Shape still folds where the dims it returns are static (start = 1), and so does a
// Gather of static dims from a Shape that does not; the Shape of the dynamic dim stays.
// CHECK-LABEL: sym_name = "dynamic_batch"
// CHECK:       ^bb0(%arg0: tensor<?x128x768xf32>):
// CHECK-NEXT:    %0 = "graph.constant"() <{value = dense<[128, 768]> : tensor<2xi64>}> : () -> tensor<2xi64> loc("tail")
// CHECK-NEXT:    %1 = "graph.shape"(%arg0) : (tensor<?x128x768xf32>) -> tensor<3xi64> loc("shape")
// CHECK-NEXT:    %2 = "graph.constant"() <{value = dense<[768, 128]> : tensor<2xi64>}> : () -> tensor<2xi64> loc("pick")
// CHECK-NEXT:    %3 = "graph.constant"() <{value = dense<0> : tensor<i64>}>
// CHECK-NEXT:    %4 = "graph.gather"(%1, %3) <{axis = 0 : i64}> {{.*}} loc("batch")
// CHECK-NEXT:    "func.return"(%0, %2, %4)
  "func.func"() <{function_type = (tensor<?x128x768xf32>) -> (tensor<2xi64>, tensor<2xi64>, tensor<i64>), sym_name = "dynamic_batch"}> ({
  ^bb0(%arg0: tensor<?x128x768xf32>):
    %0 = "graph.shape"(%arg0) <{start = 1 : i64}> : (tensor<?x128x768xf32>) -> tensor<2xi64> loc("tail")
    %1 = "graph.shape"(%arg0) : (tensor<?x128x768xf32>) -> tensor<3xi64> loc("shape")
    %2 = "graph.constant"() <{value = dense<[-1, 1]> : tensor<2xi64>}> : () -> tensor<2xi64>
    %3 = "graph.gather"(%1, %2) <{axis = 0 : i64}> : (tensor<3xi64>, tensor<2xi64>) -> tensor<2xi64> loc("pick")
    %4 = "graph.constant"() <{value = dense<0> : tensor<i64>}> : () -> tensor<i64>
    %5 = "graph.gather"(%1, %4) <{axis = 0 : i64}> : (tensor<3xi64>, tensor<i64>) -> tensor<i64> loc("batch")
    "func.return"(%0, %3, %5) : (tensor<2xi64>, tensor<2xi64>, tensor<i64>) -> ()
  }) : () -> ()

// A Cast to the type a value has and a Reshape to the shape it has are the value itself; a real Cast of a
// constant folds, its result typed as the Cast's; an op on a non-constant stays.
// CHECK-LABEL: sym_name = "no_ops"
// CHECK:       ^bb0(%arg0: tensor<2x3xf32>):
// CHECK-NEXT:    %0 = "graph.relu"(%arg0) {{.*}} loc("relu")
// CHECK-NEXT:    %1 = "graph.constant"() <{value = dense<[1, -2, 3]> : tensor<3xi32>}> : () -> tensor<3xi32> loc("real_cast")
// CHECK-NEXT:    "func.return"(%0, %1) : (tensor<2x3xf32>, tensor<3xi32>) -> ()
  "func.func"() <{function_type = (tensor<2x3xf32>) -> (tensor<2x3xf32>, tensor<3xi32>), sym_name = "no_ops"}> ({
  ^bb0(%arg0: tensor<2x3xf32>):
    %0 = "graph.cast"(%arg0) <{to = 1 : i64}> : (tensor<2x3xf32>) -> tensor<2x3xf32> loc("same_cast")
    %1 = "graph.constant"() <{value = dense<[2, 3]> : tensor<2xi64>}> : () -> tensor<2xi64>
    %2 = "graph.reshape"(%0, %1) : (tensor<2x3xf32>, tensor<2xi64>) -> tensor<2x3xf32> loc("same_reshape")
    %3 = "graph.relu"(%2) : (tensor<2x3xf32>) -> tensor<2x3xf32> loc("relu")
    %4 = "graph.constant"() <{value = dense<[1.5, -2.5, 3.0]> : tensor<3xf32>}> : () -> tensor<3xf32>
    %5 = "graph.cast"(%4) <{to = 6 : i64}> : (tensor<3xf32>) -> tensor<3xi32> loc("real_cast")
    "func.return"(%3, %5) : (tensor<2x3xf32>, tensor<3xi32>) -> ()
  }) : () -> ()

// Folding may not grow a tensor past max-elements unless its inputs were as large: with a cap of 4 the
// 16-element fill stays an op while the 6-element transpose of a 6-element weight still folds.
// CHECK-LABEL: sym_name = "cap"
// CHECK-NEXT:    %0 = "graph.constant"() <{value = dense<1.0> : tensor<4x4xf32>}> : () -> tensor<4x4xf32> loc("fill")
// CHECK-NEXT:    %1 = "graph.constant"() <{value = dense<{{\[}}[1.0, 4.0], [2.0, 5.0], [3.0, 6.0]]> : tensor<3x2xf32>}> {{.*}} loc("transpose")
// CHECK-NEXT:    "func.return"(%0, %1)
// CAP-LABEL:   sym_name = "cap"
// CAP-NEXT:      %0 = "graph.constant"() <{value = dense<4> : tensor<2xi64>}>
// CAP-NEXT:      %1 = "graph.constant_of_shape"(%0) {{.*}} loc("fill")
// CAP-NEXT:      %2 = "graph.constant"() <{value = dense<{{\[}}[1.0, 4.0], [2.0, 5.0], [3.0, 6.0]]> : tensor<3x2xf32>}> {{.*}} loc("transpose")
// CAP-NEXT:      "func.return"(%1, %2)
  "func.func"() <{function_type = () -> (tensor<4x4xf32>, tensor<3x2xf32>), sym_name = "cap"}> ({
    %0 = "graph.constant"() <{value = dense<4> : tensor<2xi64>}> : () -> tensor<2xi64>
    %1 = "graph.constant_of_shape"(%0) <{value = dense<1.0> : tensor<1xf32>}> : (tensor<2xi64>) -> tensor<4x4xf32> loc("fill")
    %2 = "graph.constant"() <{value = dense<[[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]> : tensor<2x3xf32>}> : () -> tensor<2x3xf32>
    %3 = "graph.transpose"(%2) : (tensor<2x3xf32>) -> tensor<3x2xf32> loc("transpose")
    "func.return"(%1, %3) : (tensor<4x4xf32>, tensor<3x2xf32>) -> ()
  }) : () -> ()

// A quantized weight keeps its integers and scale: DequantizeLinear is never folded, though the Transpose of
// its integers is.
// CHECK-LABEL: sym_name = "quantized_weight"
// CHECK-NEXT:    %0 = "graph.constant"() <{value = dense<{{\[}}[1, 3], [-2, 4]]> : tensor<2x2xi8>}> {{.*}} loc("transpose_q")
// CHECK-NEXT:    %1 = "graph.constant"() <{value = dense<0.5> : tensor<f32>}>
// CHECK-NEXT:    %2 = "graph.dequantize_linear"(%0, %1) {{.*}} loc("dequantize")
// CHECK-NEXT:    "func.return"(%2)
  "func.func"() <{function_type = () -> tensor<2x2xf32>, sym_name = "quantized_weight"}> ({
    %0 = "graph.constant"() <{value = dense<[[1, -2], [3, 4]]> : tensor<2x2xi8>}> : () -> tensor<2x2xi8>
    %1 = "graph.transpose"(%0) : (tensor<2x2xi8>) -> tensor<2x2xi8> loc("transpose_q")
    %2 = "graph.constant"() <{value = dense<0.5> : tensor<f32>}> : () -> tensor<f32>
    %3 = "graph.dequantize_linear"(%1, %2) : (tensor<2x2xi8>, tensor<f32>) -> tensor<2x2xf32> loc("dequantize")
    "func.return"(%3) : (tensor<2x2xf32>) -> ()
  }) : () -> ()
}) : () -> ()
