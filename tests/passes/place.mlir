// RUN: cimc opt %s --passes 'tile{array-rows=4},bit-slice{cell-bits=2 dac-bits=2 array-rows=4 array-cols=2},split-groups,place{effort=5}' | filecheck %s
// RUN: not cimc opt %s --passes 'place{effort=0}' 2>&1 | filecheck %s --check-prefix=BAD

// Two layers on a 2x2 chip of 8 arrays per tile whose tile (1, 0) is faulty; the I/O port is at tile (0, 0).
// fc1 (8 rows x 3 columns of 4-bit weights) is two row blocks of 2 signs x 2 slices x 2 column blocks = 8 arrays,
// a tile each; fc2 (3 x 2) one block of 4 arrays. Per sample: the input codes reach each fc1 block (4 rows x 4 bits:
// 2 bytes), fc1's second block sends its partial sums to the first (3 x int32: 12 bytes), fc1's first block the
// codes of fc2's input to fc2 (3 x 4 bits: 2 bytes), fc2 the outputs to the port (2 x f32: 8 bytes).
// The optimum (unique; by brute force 20): fc1's reduction point at (0, 1), its second block at (1, 1), fc2 at the
// port: 2 x 1 + 2 x 2 + 12 x 1 + 2 x 1 + 8 x 0 = 20. The naive placement (row-major: fc1 at (0, 0) and (0, 1),
// fc2 at (1, 1)) costs 2 x 0 + 2 x 1 + 12 x 1 + 2 x 2 + 8 x 2 = 34. The stars' bound: fc1's second block and fc2
// at least a hop from fc1's reduction point, 12 + 2 = 14 (the port's flows left out).
// The traffic is recorded once, five numbers a flow (src group, dst group, -1 the port; bytes; kind: 0 activations,
// 1 partials, 3 outputs; the value carried, numbered arguments first: %0 is 1): the input's bit planes to groups 0
// and 1, group 1's partial sums (%8) to group 0, fc2's bit planes (%12) from group 0 to 2, the outputs (%17).
// CHECK:      "builtin.module"() <{cim.chip = {{.*}}, cim.placement = {bound = 20 : i64, lower_bound = 14 : i64, naive_objective = 34 : i64, objective = 20 : i64, solver = "cp-sat", status = "OPTIMAL"}, cim.traffic = array<i64: -1, 0, 2, 0, 1, -1, 1, 2, 0, 1, 1, 0, 12, 1, 9, 0, 2, 2, 0, 13, 2, -1, 8, 3, 18>}>
// CHECK:      "cim.program"() <{{.*}} cim.group = 0 : i64, cim.tile = array<i64: 0, 1>, levels = dense_resource<fc1.r0.levels>
// CHECK:      "cim.program"() <{{.*}} cim.group = 1 : i64, cim.tile = array<i64: 1, 1>, levels = dense_resource<fc1.r1.levels>
// CHECK:      "cim.program"() <{{.*}} cim.group = 2 : i64, cim.tile = array<i64: 0, 0>, levels = dense_resource<fc2.r0.levels>

// BAD: cimc: error: pass 'place' options: 'effort' must be positive, 'seed' non-negative and 'workers' at least 1, got 0.0, 0 and 1
"builtin.module"() <{cim.chip = {adc_bits = 8 : i64, adc_columns = 8 : i64, adc_cycles = 1 : i64, adc_pj = 1.67 : f64, array_cols = 64 : i64, array_column_pj = 0.00098 : f64, array_fixed_pj = 0.0 : f64, array_row_pj = 0.117 : f64, array_rows = 64 : i64, arrays_per_tile = 8 : i64, buffer_byte_pj = 0.64 : f64, buffer_bytes = 65536 : i64, cell_bits = 2 : i64, cell_program_pj = 3.0 : f64, clock_hz = 1200000000.0 : f64, dac_bits = 1 : i64, dac_pj = 0.39 : f64, description = "", device = "rram", digital_op_pj = 0.042 : f64, digital_ops_per_cycle = 16 : i64, faulty_tiles = array<i64: 1, 0>, ir_drop = 1 : i64, link_bits = 32 : i64, mesh_cols = 2 : i64, mesh_rows = 2 : i64, name = "test", network_bit_hop_pj = 0.081 : f64, read_cycles = 120 : i64, router_latency = 2 : i64, sign_encoding = "differential", torus = 0 : i64, weight_scaling = "column"}}> ({
  "func.func"() <{arg_attrs = [{graph.name = "a"}], function_type = (tensor<?x8xui8>) -> tensor<?x2xf32>, res_attrs = [{graph.name = "y"}], sym_name = "main"}> ({
  ^bb0(%arg0: tensor<?x8xui8>):
    %0 = "cim.linear"(%arg0) <{input_bits = 4 : i64, weight_bits = 4 : i64, weights = dense<[[1, 2, 3], [4, 5, 6], [7, -8, 1], [2, 3, 4], [-1, -2, -3], [-4, -5, -6], [-7, 7, -1], [-2, -3, -4]]> : tensor<8x3xi8>}> : (tensor<?x8xui8>) -> tensor<?x3xi32> loc("fc1")
    %1 = "cim.dequantize"(%0) <{scale = dense<0.25> : tensor<3xf64>, weight_sums = dense<0> : tensor<3xi64>}> : (tensor<?x3xi32>) -> tensor<?x3xf32> loc("fc1")
    %2 = "cim.quantize"(%1) <{bits = 4 : i64, scale = 1.0 : f32, zero_point = 8 : i64}> : (tensor<?x3xf32>) -> tensor<?x3xui8> loc("fc2")
    %3 = "cim.linear"(%2) <{input_bits = 4 : i64, weight_bits = 4 : i64, weights = dense<[[1, -1], [2, -2], [3, -3]]> : tensor<3x2xi8>}> : (tensor<?x3xui8>) -> tensor<?x2xi32> loc("fc2")
    %4 = "cim.dequantize"(%3) <{scale = dense<0.5> : tensor<2xf64>, weight_sums = dense<[6, -6]> : tensor<2xi64>, zero_point = 8 : i64}> : (tensor<?x2xi32>) -> tensor<?x2xf32> loc("fc2")
    "func.return"(%4) : (tensor<?x2xf32>) -> ()
  }) : () -> ()
}) : () -> ()
