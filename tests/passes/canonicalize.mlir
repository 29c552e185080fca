// RUN: cimc opt %s --passes canonicalize | filecheck %s
// RUN: cimc opt %s --passes canonicalize | filecheck %s --check-prefix=GONE

// A small CNN as exporters write it. Canonicalize removes the Identity and the Dropout, folds the flatten's
// shape arithmetic to a constant, erases the dead Relu, after which the Conv's only user is the batch norm, which
// then folds into it. The second output, a fill of constant shape, folds to a constant of static type, and the
// function type follows.
// CHECK-LABEL: "func.func"
// CHECK-SAME:    function_type = (tensor<1x2x2x2xf32>) -> (tensor<1x3xf32>, tensor<2x2xf32>)
// CHECK:       ^bb0(%arg0: tensor<1x2x2x2xf32>):
// CHECK-NEXT:    %0 = "graph.constant"() <{value = dense<{{.*}}> : tensor<2x2x1x1xf32>}> {{.*}} loc("conv")
// CHECK-NEXT:    %1 = "graph.constant"() <{value = dense<[-0.25, 4.0]> : tensor<2xf32>}> {{.*}} loc("conv")
// CHECK-NEXT:    %2 = "graph.conv"(%arg0, %0, %1) {{.*}} loc("conv")
// CHECK-NEXT:    %3 = "graph.relu"(%2) {{.*}} loc("relu")
// CHECK-NEXT:    %4 = "graph.constant"() <{value = dense<[1, -1]> : tensor<2xi64>}> {{.*}} loc("concat")
// CHECK-NEXT:    %5 = "graph.reshape"(%3, %4) {{.*}} loc("flatten")
// CHECK-NEXT:    %6 = "graph.constant"() <{value = dense<0.5> : tensor<3x8xf32>}>
// CHECK-NEXT:    %7 = "graph.constant"() <{value = dense<[1.0, 2.0, 3.0]> : tensor<3xf32>}>
// CHECK-NEXT:    %8 = "graph.gemm"(%5, %6, %7) {{.*}} loc("fc")
// CHECK-NEXT:    %9 = "graph.constant"() <{value = dense<7.0> : tensor<2x2xf32>}> : () -> tensor<2x2xf32> loc("fill")
// CHECK-NEXT:    "func.return"(%8, %9) : (tensor<1x3xf32>, tensor<2x2xf32>) -> ()
// GONE-NOT: graph.identity
// GONE-NOT: graph.batch_norm
// GONE-NOT: graph.dropout
// GONE-NOT: graph.shape
// GONE-NOT: graph.gather
// GONE-NOT: graph.unsqueeze
// GONE-NOT: graph.concat
// GONE-NOT: unused_relu
"builtin.module"() ({
  "func.func"() <{arg_attrs = [{graph.name = "image"}], function_type = (tensor<1x2x2x2xf32>) -> (tensor<1x3xf32>, tensor<?x?xf32>), res_attrs = [{graph.name = "logits"}, {graph.name = "fill"}], sym_name = "main"}> ({
  ^bb0(%arg0: tensor<1x2x2x2xf32>):
    %0 = "graph.identity"(%arg0) : (tensor<1x2x2x2xf32>) -> tensor<1x2x2x2xf32> loc("input_copy")
    %1 = "graph.constant"() <{value = dense<[[[[2.0]], [[4.0]]], [[[-1.0]], [[0.5]]]]> : tensor<2x2x1x1xf32>}> : () -> tensor<2x2x1x1xf32>
    %2 = "graph.constant"() <{value = dense<[0.5, 1.0]> : tensor<2xf32>}> : () -> tensor<2xf32>
    %3 = "graph.conv"(%0, %1, %2) <{kernel_shape = array<i64: 1, 1>}> : (tensor<1x2x2x2xf32>, tensor<2x2x1x1xf32>, tensor<2xf32>) -> tensor<1x2x2x2xf32> loc("conv")
    %4 = "graph.relu"(%3) : (tensor<1x2x2x2xf32>) -> tensor<1x2x2x2xf32> loc("unused_relu")
    %5 = "graph.constant"() <{value = dense<[1.0, 3.0]> : tensor<2xf32>}> : () -> tensor<2xf32>
    %6 = "graph.constant"() <{value = dense<[0.25, -2.0]> : tensor<2xf32>}> : () -> tensor<2xf32>
    %7 = "graph.constant"() <{value = dense<[1.5, -1.0]> : tensor<2xf32>}> : () -> tensor<2xf32>
    %8 = "graph.constant"() <{value = dense<[3.75, 0.75]> : tensor<2xf32>}> : () -> tensor<2xf32>
    %9 = "graph.batch_norm"(%3, %5, %6, %7, %8) <{epsilon = 0.25 : f32}> : (tensor<1x2x2x2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>) -> tensor<1x2x2x2xf32> loc("bn")
    %10 = "graph.relu"(%9) : (tensor<1x2x2x2xf32>) -> tensor<1x2x2x2xf32> loc("relu")
    %11 = "graph.dropout"(%10) <{operandSegmentSizes = array<i32: 1, 0, 0>}> : (tensor<1x2x2x2xf32>) -> tensor<1x2x2x2xf32> loc("dropout")
    %12 = "graph.shape"(%11) : (tensor<1x2x2x2xf32>) -> tensor<4xi64> loc("shape")
    %13 = "graph.constant"() <{value = dense<0> : tensor<i64>}> : () -> tensor<i64>
    %14 = "graph.gather"(%12, %13) <{axis = 0 : i64}> : (tensor<4xi64>, tensor<i64>) -> tensor<i64> loc("gather")
    %15 = "graph.constant"() <{value = dense<0> : tensor<1xi64>}> : () -> tensor<1xi64>
    %16 = "graph.unsqueeze"(%14, %15) : (tensor<i64>, tensor<1xi64>) -> tensor<1xi64> loc("unsqueeze")
    %17 = "graph.constant"() <{value = dense<-1> : tensor<1xi64>}> : () -> tensor<1xi64>
    %18 = "graph.concat"(%16, %17) <{axis = 0 : i64}> : (tensor<1xi64>, tensor<1xi64>) -> tensor<2xi64> loc("concat")
    %19 = "graph.reshape"(%11, %18) : (tensor<1x2x2x2xf32>, tensor<2xi64>) -> tensor<?x?xf32> loc("flatten")
    %20 = "graph.constant"() <{value = dense<0.5> : tensor<3x8xf32>}> : () -> tensor<3x8xf32>
    %21 = "graph.constant"() <{value = dense<[1.0, 2.0, 3.0]> : tensor<3xf32>}> : () -> tensor<3xf32>
    %22 = "graph.gemm"(%19, %20, %21) <{transB = 1 : i64}> : (tensor<?x?xf32>, tensor<3x8xf32>, tensor<3xf32>) -> tensor<1x3xf32> loc("fc")
    %23 = "graph.constant"() <{value = dense<2> : tensor<2xi64>}> : () -> tensor<2xi64>
    %24 = "graph.constant_of_shape"(%23) <{value = dense<7.0> : tensor<1xf32>}> : (tensor<2xi64>) -> tensor<?x?xf32> loc("fill")
    "func.return"(%22, %24) : (tensor<1x3xf32>, tensor<?x?xf32>) -> ()
  }) : () -> ()
}) : () -> ()
