// RUN: cimc opt %s --passes remove-identity | filecheck %s

// Identity, a chain of them, and an Identity feeding the return are all their input.
// CHECK-LABEL: sym_name = "identity"
// CHECK:       ^bb0(%arg0: tensor<2x3xf32>):
// CHECK-NEXT:    %0 = "graph.relu"(%arg0) {{.*}} loc("relu")
// CHECK-NEXT:    "func.return"(%0, %arg0) : (tensor<2x3xf32>, tensor<2x3xf32>) -> ()
"builtin.module"() ({
  "func.func"() <{function_type = (tensor<2x3xf32>) -> (tensor<2x3xf32>, tensor<2x3xf32>), sym_name = "identity"}> ({
  ^bb0(%arg0: tensor<2x3xf32>):
    %0 = "graph.identity"(%arg0) : (tensor<2x3xf32>) -> tensor<2x3xf32> loc("id0")
    %1 = "graph.identity"(%0) : (tensor<2x3xf32>) -> tensor<2x3xf32> loc("id1")
    %2 = "graph.relu"(%1) : (tensor<2x3xf32>) -> tensor<2x3xf32> loc("relu")
    %3 = "graph.identity"(%arg0) : (tensor<2x3xf32>) -> tensor<2x3xf32> loc("id_out")
    "func.return"(%2, %3) : (tensor<2x3xf32>, tensor<2x3xf32>) -> ()
  }) : () -> ()

// Dropout not in training is its input, with or without ratio and a constant false training_mode (whose
// constants go with it), and with an unused mask. A Dropout whose mask is read, or whose training_mode is not a
// constant, stays.
// CHECK-LABEL: sym_name = "dropout"
// CHECK:       ^bb0(%arg0: tensor<4xf32>, %arg1: tensor<i1>):
// CHECK-NEXT:    %0 = "graph.relu"(%arg0) {{.*}} loc("relu")
// CHECK-NEXT:    %1:2 = "graph.dropout"(%0) {{.*}} loc("mask_used")
// CHECK-NEXT:    %2 = "graph.constant"() <{value = dense<0.5> : tensor<f32>}>
// CHECK-NEXT:    %3 = "graph.dropout"(%1#0, %2, %arg1) {{.*}} loc("training_unknown")
// CHECK-NEXT:    "func.return"(%3, %1#1)
  "func.func"() <{function_type = (tensor<4xf32>, tensor<i1>) -> (tensor<4xf32>, tensor<4xi1>), sym_name = "dropout"}> ({
  ^bb0(%arg0: tensor<4xf32>, %arg1: tensor<i1>):
    %0 = "graph.dropout"(%arg0) <{operandSegmentSizes = array<i32: 1, 0, 0>}> : (tensor<4xf32>) -> tensor<4xf32> loc("plain")
    %1 = "graph.constant"() <{value = dense<0.5> : tensor<f32>}> : () -> tensor<f32>
    %2 = "graph.constant"() <{value = dense<false> : tensor<i1>}> : () -> tensor<i1>
    %3 = "graph.dropout"(%0, %1, %2) <{operandSegmentSizes = array<i32: 1, 1, 1>}> : (tensor<4xf32>, tensor<f32>, tensor<i1>) -> tensor<4xf32> loc("not_training")
    %4:2 = "graph.dropout"(%3) <{operandSegmentSizes = array<i32: 1, 0, 0>}> : (tensor<4xf32>) -> (tensor<4xf32>, tensor<4xi1>) loc("mask_unused")
    %5 = "graph.relu"(%4#0) : (tensor<4xf32>) -> tensor<4xf32> loc("relu")
    %6:2 = "graph.dropout"(%5) <{operandSegmentSizes = array<i32: 1, 0, 0>}> : (tensor<4xf32>) -> (tensor<4xf32>, tensor<4xi1>) loc("mask_used")
    %7 = "graph.constant"() <{value = dense<0.5> : tensor<f32>}> : () -> tensor<f32>
    %8 = "graph.dropout"(%6#0, %7, %arg1) <{operandSegmentSizes = array<i32: 1, 1, 1>}> : (tensor<4xf32>, tensor<f32>, tensor<i1>) -> tensor<4xf32> loc("training_unknown")
    "func.return"(%8, %6#1) : (tensor<4xf32>, tensor<4xi1>) -> ()
  }) : () -> ()
}) : () -> ()
