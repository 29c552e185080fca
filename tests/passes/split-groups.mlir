// RUN: cimc opt %s --passes 'tile{array-rows=4},bit-slice{cell-bits=2 dac-bits=2 array-rows=4 array-cols=2},split-groups' | filecheck %s
// RUN: cimc opt %s --passes 'tile{array-rows=4},bit-slice{cell-bits=2 dac-bits=2 sign-encoding=offset array-rows=4 array-cols=2},split-groups' | filecheck %s --check-prefix=OFFSET
// RUN: not cimc opt %s --passes 'tile{array-rows=4},bit-slice{cell-bits=1 dac-bits=2 array-rows=4 array-cols=2},split-groups' 2>&1 | filecheck %s --check-prefix=BIG

// A tile holds 8 arrays. On 2-column arrays, "wide" (4-bit weights, 10 columns: 5 column blocks) takes
// 2 signs x 2 slices x 5 = 20 arrays per row block: chunks of 2 column blocks (8 arrays), columns 0-3, 4-7, 8-9,
// whose partial sums enter the layer's accumulate at columns 0, 4, 8 for each row block.
// CHECK:      "cim.program"() {{.*}} levels = dense_resource<wide.r0.c0.levels> : tensor<2x2x4x4xui8>
// CHECK-NEXT: "cim.program"() {{.*}} levels = dense_resource<wide.r0.c1.levels> : tensor<2x2x4x4xui8>
// CHECK-NEXT: "cim.program"() {{.*}} levels = dense_resource<wide.r0.c2.levels> : tensor<2x2x4x2xui8>
// CHECK-NEXT: %[[M0:.*]] = "cim.mvm"(%0, %1) <{row_offset = 0 : i64}>
// CHECK-NEXT: "cim.mvm"(%0, %2) <{row_offset = 0 : i64}>
// CHECK-NEXT: "cim.mvm"(%0, %3) <{row_offset = 0 : i64}>
// CHECK-NEXT: %[[A0:.*]] = "cim.adc"(%[[M0]]) <{bits = 6 : i64, full_scale_bits = 6 : i64}>
// CHECK:      "cim.shift_add"(%[[A0]]) <{cell_bits = 2 : i64, dac_bits = 2 : i64}> : (tensor<2x?x2x2x4xi32>) -> tensor<?x4xi32> loc("wide")
// CHECK:      "cim.program"() {{.*}} levels = dense_resource<wide.r1.c0.levels> : tensor<2x2x2x4xui8>
// CHECK:      "cim.accumulate"(%10, %11, %12, %22, %23, %24) <{col_offsets = array<i64: 0, 4, 8, 0, 4, 8>, columns = 10 : i64}> {{.*}} loc("wide")
// "single" (5-bit weights: 3 slices; 4 rows read from row 2, 5 columns) is one row block of 2 x 3 x 3 = 18 arrays:
// chunks of one column block (6 arrays), and an accumulate of their partial sums where the layer had none.
// CHECK:      "cim.program"() {{.*}} levels = dense_resource<single.r0.c0.levels> : tensor<2x3x4x2xui8>
// CHECK-NEXT: "cim.program"() {{.*}} levels = dense_resource<single.r0.c1.levels> : tensor<2x3x4x2xui8>
// CHECK-NEXT: "cim.program"() {{.*}} levels = dense_resource<single.r0.c2.levels> : tensor<2x3x4x1xui8>
// CHECK-NEXT: "cim.mvm"(%0, %26) <{row_offset = 2 : i64}>
// CHECK:      %38 = "cim.accumulate"(%35, %36, %37) <{col_offsets = array<i64: 0, 2, 4>, columns = 5 : i64}> : (tensor<?x2xi32>, tensor<?x2xi32>, tensor<?x1xi32>) -> tensor<?x5xi32> loc("single")
// CHECK-NEXT: "func.return"(%25, %38)

// Offset codes take one array per slice: "wide" in chunks of 4 column blocks (8 arrays), "single" of 2 (6); each
// chunk's shift-add takes the offset out of its own columns, from the same codes.
// OFFSET:      "cim.program"() {{.*}} levels = dense_resource<wide.r0.c0.levels> : tensor<1x2x4x8xui8>
// OFFSET-NEXT: "cim.program"() {{.*}} levels = dense<{{.*}}> : tensor<1x2x4x2xui8>
// OFFSET:      "cim.shift_add"(%5, %arg0) <{cell_bits = 2 : i64, dac_bits = 2 : i64, row_offset = 0 : i64, rows = 4 : i64, weight_offset = 8 : i64}> : (tensor<2x?x1x2x8xi32>, tensor<?x6xui8>) -> tensor<?x8xi32>
// OFFSET-NEXT: "cim.shift_add"(%6, %arg0) <{cell_bits = 2 : i64, dac_bits = 2 : i64, row_offset = 0 : i64, rows = 4 : i64, weight_offset = 8 : i64}> : (tensor<2x?x1x2x2xi32>, tensor<?x6xui8>) -> tensor<?x2xi32>
// OFFSET:      "cim.accumulate"(%7, %8, %15, %16) <{col_offsets = array<i64: 0, 8, 0, 8>, columns = 10 : i64}>
// OFFSET:      "cim.accumulate"(%24, %25) <{col_offsets = array<i64: 0, 4>, columns = 5 : i64}>

// On 1-bit cells "single" takes 2 signs x 5 slices = 10 arrays for one column block: more than a tile holds.
// BIG: cimc: error: 'cim.program' op at loc("single"): layer 'single': one column block takes 10 arrays (2 signs x 5 slices), more than a tile's 8: use a chip with more arrays per tile
"builtin.module"() <{cim.chip = {adc_bits = 8 : i64, adc_columns = 8 : i64, adc_cycles = 1 : i64, adc_pj = 1.67 : f64, array_cols = 64 : i64, array_column_pj = 0.00098 : f64, array_fixed_pj = 0.0 : f64, array_row_pj = 0.117 : f64, array_rows = 64 : i64, arrays_per_tile = 8 : i64, buffer_byte_pj = 0.64 : f64, buffer_bytes = 65536 : i64, cell_bits = 2 : i64, cell_program_pj = 3.0 : f64, clock_hz = 1200000000.0 : f64, dac_bits = 1 : i64, dac_pj = 0.39 : f64, description = "", device = "rram", digital_op_pj = 0.042 : f64, digital_ops_per_cycle = 16 : i64, faulty_tiles = array<i64>, ir_drop = 1 : i64, link_bits = 32 : i64, mesh_cols = 3 : i64, mesh_rows = 2 : i64, name = "test", network_bit_hop_pj = 0.081 : f64, read_cycles = 120 : i64, router_latency = 2 : i64, sign_encoding = "differential", torus = 0 : i64, weight_scaling = "column"}}> ({
  "func.func"() <{arg_attrs = [{graph.name = "a"}], function_type = (tensor<?x6xui8>) -> (tensor<?x10xi32>, tensor<?x5xi32>), res_attrs = [{graph.name = "y0"}, {graph.name = "y1"}], sym_name = "main"}> ({
  ^bb0(%arg0: tensor<?x6xui8>):
    %0 = "cim.linear"(%arg0) <{input_bits = 4 : i64, row_offset = 0 : i64, weight_bits = 4 : i64, weights = dense<[[1, 2, 3, 4, 5, 6, 7, -8, 1, 2], [1, 2, 3, 4, 5, 6, 7, -8, 1, 2], [1, 2, 3, 4, 5, 6, 7, -8, 1, 2], [-1, -2, -3, -4, -5, -6, -7, 7, -1, -2], [1, 0, 3, 0, 5, 0, 7, 0, 1, 0], [0, 2, 0, 4, 0, 6, 0, -8, 0, 2]]> : tensor<6x10xi8>}> : (tensor<?x6xui8>) -> tensor<?x10xi32> loc("wide")
    %1 = "cim.linear"(%arg0) <{input_bits = 4 : i64, row_offset = 2 : i64, weight_bits = 5 : i64, weights = dense<[[1, -2, 3, -4, 5], [15, 2, 3, 4, 5], [1, 2, -16, 4, 5], [1, 2, 3, 4, 5]]> : tensor<4x5xi8>}> : (tensor<?x6xui8>) -> tensor<?x5xi32> loc("single")
    "func.return"(%0, %1) : (tensor<?x10xi32>, tensor<?x5xi32>) -> ()
  }) : () -> ()
}) : () -> ()
