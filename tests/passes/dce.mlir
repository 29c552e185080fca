// RUN: cimc opt %s --passes dce | filecheck %s

// A dead chain goes in one pass, constants included; live ops, the return and the unused input stay.
// CHECK-LABEL: "func.func"
// CHECK-SAME:    function_type = (tensor<2x3xf32>, tensor<4xf32>) -> tensor<2x3xf32>
// CHECK:       ^bb0(%arg0: tensor<2x3xf32>, %arg1: tensor<4xf32>):
// CHECK-NEXT:    %0 = "graph.constant"() <{value = dense<1.0> : tensor<1x3xf32>}>
// CHECK-NEXT:    %1 = "graph.add"(%arg0, %0) {{.*}} loc("live")
// CHECK-NEXT:    "func.return"(%1)

// Every function is swept, and a function whose body is only dead code keeps its signature.
// CHECK-LABEL: "func.func"
// CHECK-SAME:    function_type = (tensor<4xf32>) -> tensor<4xf32>,{{.*}}sym_name = "second"
// CHECK:       ^bb0(%arg0: tensor<4xf32>):
// CHECK-NEXT:    "func.return"(%arg0)
"builtin.module"() ({
  "func.func"() <{arg_attrs = [{graph.name = "x"}, {graph.name = "unused"}], function_type = (tensor<2x3xf32>, tensor<4xf32>) -> tensor<2x3xf32>, res_attrs = [{graph.name = "y"}], sym_name = "main"}> ({
  ^bb0(%arg0: tensor<2x3xf32>, %arg1: tensor<4xf32>):
    %0 = "graph.constant"() <{value = dense<1.0> : tensor<1x3xf32>}> : () -> tensor<1x3xf32>
    %1 = "graph.constant"() <{value = dense<[2.0, 3.0, 4.0]> : tensor<3xf32>}> : () -> tensor<3xf32>
    %2 = "graph.add"(%arg0, %1) : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32> loc("dead_add")
    %3 = "graph.relu"(%2) : (tensor<2x3xf32>) -> tensor<2x3xf32> loc("dead_relu")
    %4 = "graph.add"(%arg0, %0) : (tensor<2x3xf32>, tensor<1x3xf32>) -> tensor<2x3xf32> loc("live")
    %5 = "graph.relu"(%3) : (tensor<2x3xf32>) -> tensor<2x3xf32> loc("dead_end")
    %6 = "graph.relu"(%arg1) : (tensor<4xf32>) -> tensor<4xf32> loc("dead_on_input")
    "func.return"(%4) : (tensor<2x3xf32>) -> ()
  }) : () -> ()
  "func.func"() <{function_type = (tensor<4xf32>) -> tensor<4xf32>, sym_name = "second"}> ({
  ^bb0(%arg0: tensor<4xf32>):
    %0 = "graph.relu"(%arg0) : (tensor<4xf32>) -> tensor<4xf32> loc("dead")
    "func.return"(%arg0) : (tensor<4xf32>) -> ()
  }) : () -> ()
}) : () -> ()
