// RUN: cimc opt %s --passes 'lower-solve{matrix-bits=4 cell-bits=2 array-rows=2 array-cols=2}' | filecheck %s
// RUN: cimc opt %s --passes 'lower-solve{matrix-bits=4}' | filecheck %s --check-prefix=CHIP
// RUN: not cimc opt %s --passes 'lower-solve{matrix-bits=1}' 2>&1 | filecheck %s --check-prefix=BAD

// A = [[2, 0.5, 0], [0, 4, -1], [1, 0, 2]], scale 4: as 4-bit integers rint(A / 4 * 7) = [[4, 1, 0], [0, 7, -2],
// [2, 0, 4]] (3.5 rounds half to even). On 2 x 2 arrays the 3 x 3 matrix is blocks of sides 2 and 1, programmed in
// row-major block order as differential pairs of two 2-bit slices: block (0, 0) = [[4, 1], [0, 7]] is slice 0
// [[0, 1], [0, 3]] and slice 1 [[1, 0], [0, 1]] of the positive array; block (0, 1) = [[0], [-2]] is 2 in the
// negative array. The slices are parallel cells of each element of the pair (parallel_slices), as the closed loop
// needs each element on one node.
// "left": A^-1 @ b, a batch of two right-hand sides per sample, is a solve of b.
// CHECK-LABEL: "func.func"
// CHECK:       ^bb0(%arg0: tensor<?x3x2xf32>, %arg1: tensor<2x3xf32>, %arg2: tensor<3x3xf32>, %arg3: tensor<3xf32>):
// CHECK-NEXT:    %0 = "cim.program"() <{array_cols = 2 : i64, array_rows = 2 : i64, cell_bits = 2 : i64, levels = dense<{{\[\[\[\[}}0, 1], [0, 3]], {{\[\[}}1, 0], [0, 1]]], {{\[\[\[}}0, 0], [0, 0]], {{\[\[}}0, 0], [0, 0]]]]> : tensor<2x2x2x2xui8>, parallel_slices = 1 : i64, sign_encoding = "differential", weight_bits = 4 : i64}> : () -> tensor<2x2x2x2xui8> loc("left")
// CHECK-NEXT:    %1 = "cim.program"() {{.*}} levels = dense<{{\[\[\[\[}}0], [0]], {{\[\[}}0], [0]]], {{\[\[\[}}0], [2]], {{\[\[}}0], [0]]]]> : tensor<2x2x2x1xui8>{{.*}} loc("left")
// CHECK-NEXT:    %2 = "cim.program"() {{.*}} levels = dense<{{\[\[\[\[}}2, 0]], {{\[\[}}0, 0]]], {{\[\[\[}}0, 0]], {{\[\[}}0, 0]]]]> : tensor<2x2x1x2xui8>{{.*}} loc("left")
// CHECK-NEXT:    %3 = "cim.program"() {{.*}} levels = dense<{{\[\[\[\[}}0]], {{\[\[}}1]]], {{\[\[\[}}0]], {{\[\[}}0]]]]> : tensor<2x2x1x1xui8>{{.*}} loc("left")
// CHECK-NEXT:    %4 = "cim.solve"(%arg0, %0, %1, %2, %3) <{block = array<i64: 2, 1>, matrix = dense<{{\[\[}}2.0, 0.5, 0.0], [0.0, 4.0, -1.0], [1.0, 0.0, 2.0]]> : tensor<3x3xf32>, scale = 4.0 : f64}> : (tensor<?x3x2xf32>, tensor<2x2x2x2xui8>, tensor<2x2x2x1xui8>, tensor<2x2x1x2xui8>, tensor<2x2x1x1xui8>) -> tensor<?x3x2xf32> loc("left")
// "right": r @ A^-1 = (A^-T r^T)^T, a solve with A^T between two transposes; A^T's block (0, 1) = [[1], [0]] is
// [[2], [0]] as integers.
// CHECK-NEXT:    %5 = "graph.transpose"(%arg1) <{perm = array<i64: 1, 0>}> : (tensor<2x3xf32>) -> tensor<3x2xf32> loc("right")
// CHECK-NEXT:    %6 = "cim.program"() {{.*}} loc("right")
// CHECK-NEXT:    %7 = "cim.program"() {{.*}} levels = dense<{{\[\[\[\[}}2], [0]], {{\[\[}}0], [0]]], {{\[\[\[}}0], [0]], {{\[\[}}0], [0]]]]> : tensor<2x2x2x1xui8>{{.*}} loc("right")
// CHECK-NEXT:    %8 = "cim.program"() {{.*}} loc("right")
// CHECK-NEXT:    %9 = "cim.program"() {{.*}} loc("right")
// CHECK-NEXT:    %10 = "cim.solve"(%5, %6, %7, %8, %9) <{block = array<i64: 2, 1>, matrix = dense<{{\[\[}}2.0, 0.0, 1.0], [0.5, 4.0, 0.0], [0.0, -1.0, 2.0]]> : tensor<3x3xf32>, scale = 4.0 : f64}> {{.*}} -> tensor<3x2xf32> loc("right")
// CHECK-NEXT:    %11 = "graph.transpose"(%10) <{perm = array<i64: 1, 0>}> : (tensor<3x2xf32>) -> tensor<2x3xf32> loc("right")
// "digital": the inverse of a computed matrix is no solve; it stays for lower-to-cim to give a digital unit.
// CHECK-NEXT:    %12 = "graph.inverse"(%arg2) : (tensor<3x3xf32>) -> tensor<3x3xf32> loc("computed")
// CHECK-NEXT:    %13 = "graph.matmul"(%12, %arg0) {{.*}} loc("digital")
// "vector": A^-1 @ v, one right-hand side. The inverse of the constant and the constant, now unused, are gone (the
// function starts with the first program, above).
// CHECK:         %18 = "cim.solve"(%arg3, %14, %15, %16, %17) {{.*}} : (tensor<3xf32>, {{.*}}) -> tensor<3xf32> loc("vector")
// CHECK-NEXT:    "func.return"(%4, %11, %13, %18)

// Options left 0 come from the module's chip: 1-bit cells on 3 x 3 arrays, so one block of 4 slices.
// CHIP:        %0 = "cim.program"() <{array_cols = 3 : i64, array_rows = 3 : i64, cell_bits = 1 : i64, levels = dense_resource<left.block0_0.levels> : tensor<2x4x3x3xui8>, parallel_slices = 1 : i64
// CHIP-NEXT:   %1 = "cim.solve"(%arg0, %0) <{block = array<i64: 3>{{.*}} loc("left")

// BAD: cimc: error: pass 'lower-solve' option 'matrix-bits' must be an integer from 2 to 16, got 1
"builtin.module"() <{cim.chip = {adc_bits = 8 : i64, adc_columns = 8 : i64, adc_cycles = 1 : i64, adc_pj = 1.67 : f64, array_cols = 3 : i64, array_column_pj = 0.00098 : f64, array_fixed_pj = 0.0 : f64, array_row_pj = 0.117 : f64, array_rows = 3 : i64, arrays_per_tile = 128 : i64, buffer_byte_pj = 0.64 : f64, buffer_bytes = 65536 : i64, cell_bits = 1 : i64, cell_program_pj = 3.0 : f64, clock_hz = 1200000000.0 : f64, dac_bits = 1 : i64, dac_pj = 0.39 : f64, description = "", device = "rram", digital_op_pj = 0.042 : f64, digital_ops_per_cycle = 16 : i64, faulty_tiles = array<i64>, ir_drop = 1 : i64, link_bits = 32 : i64, mesh_cols = 16 : i64, mesh_rows = 16 : i64, name = "test", network_bit_hop_pj = 0.081 : f64, read_cycles = 120 : i64, router_latency = 2 : i64, sign_encoding = "differential", torus = 0 : i64, weight_scaling = "column"}}> ({
  "func.func"() <{arg_attrs = [{graph.name = "b"}, {graph.name = "rows"}, {graph.name = "m"}, {graph.name = "v"}], function_type = (tensor<?x3x2xf32>, tensor<2x3xf32>, tensor<3x3xf32>, tensor<3xf32>) -> (tensor<?x3x2xf32>, tensor<2x3xf32>, tensor<?x3x2xf32>, tensor<3xf32>), res_attrs = [{graph.name = "left"}, {graph.name = "right"}, {graph.name = "digital"}, {graph.name = "vector"}], sym_name = "main"}> ({
  ^bb0(%arg0: tensor<?x3x2xf32>, %arg1: tensor<2x3xf32>, %arg2: tensor<3x3xf32>, %arg3: tensor<3xf32>):
    %0 = "graph.constant"() <{value = dense<[[2.0, 0.5, 0.0], [0.0, 4.0, -1.0], [1.0, 0.0, 2.0]]> : tensor<3x3xf32>}> : () -> tensor<3x3xf32> loc("a")
    %1 = "graph.inverse"(%0) : (tensor<3x3xf32>) -> tensor<3x3xf32> loc("inv")
    %2 = "graph.matmul"(%1, %arg0) : (tensor<3x3xf32>, tensor<?x3x2xf32>) -> tensor<?x3x2xf32> loc("left")
    %3 = "graph.matmul"(%arg1, %1) : (tensor<2x3xf32>, tensor<3x3xf32>) -> tensor<2x3xf32> loc("right")
    %4 = "graph.inverse"(%arg2) : (tensor<3x3xf32>) -> tensor<3x3xf32> loc("computed")
    %5 = "graph.matmul"(%4, %arg0) : (tensor<3x3xf32>, tensor<?x3x2xf32>) -> tensor<?x3x2xf32> loc("digital")
    %6 = "graph.matmul"(%1, %arg3) : (tensor<3x3xf32>, tensor<3xf32>) -> tensor<3xf32> loc("vector")
    "func.return"(%2, %3, %5, %6) : (tensor<?x3x2xf32>, tensor<2x3xf32>, tensor<?x3x2xf32>, tensor<3xf32>) -> ()
  }) : () -> ()
}) : () -> ()
