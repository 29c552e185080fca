// RUN: cimc opt %s --passes 'tile{array-rows=4},bit-slice{cell-bits=2,dac-bits=2,array-rows=4,array-cols=4}' | filecheck %s
// RUN: cimc opt %s --passes 'tile{array-rows=4},bit-slice{cell-bits=2,dac-bits=2,adc-bits=3,sign-encoding=offset,array-rows=4,array-cols=4}' | filecheck %s --check-prefix=OFFSET
// RUN: not cimc opt %s --passes 'bit-slice{array-rows=4}' 2>&1 | filecheck %s --check-prefix=UNTILED
// RUN: not cimc opt %s --passes 'bit-slice{sign-encoding=twos}' 2>&1 | filecheck %s --check-prefix=BAD

// "fc": 4-bit weights read from codes row 1 on, tiled into rows 1..4 (column 0 only) and rows 5..6. The 4-bit
// codes stream in 2 planes of 2 DAC bits; one cim.bit_planes serves both row blocks. Each weight sits in 2 slices
// of 2-bit cells (the cim.program keeps weight_bits = 4), levels[sign][slice][row][col], sign 0 the positive part,
// sign 1 the negative:
//   block 0 [1, 2, -3, 4]: positive 1, 2, 0, 4 -> slice 0 (low bits) 1, 2, 0, 0 and slice 1 0, 0, 0, 1;
//                          negative 0, 0, 3, 0 -> slice 0 0, 0, 3, 0 and slice 1 all 0
//   block 1 [[5, -6], [0, 7]]: positive [[5, 0], [0, 7]] -> [[1, 0], [0, 3]] and [[1, 0], [0, 1]];
//                              negative [[0, 6], [0, 0]] -> [[0, 2], [0, 0]] and [[0, 1], [0, 0]]
// An exact ADC reads a column of 4 rows of 2-bit planes on 2-bit cells, up to 4 x 3 x 3 = 36: 6 bits (2 rows: 18,
// 5 bits).
// CHECK:       ^bb0(%arg0: tensor<?x7xui8>):
// CHECK-NEXT:    %0 = "cim.bit_planes"(%arg0) <{dac_bits = 2 : i64, input_bits = 4 : i64}> : (tensor<?x7xui8>) -> tensor<2x?x7xui8>
// CHECK-NEXT:    %1 = "cim.program"() <{array_cols = 4 : i64, array_rows = 4 : i64, cell_bits = 2 : i64, levels = dense<{{\[\[\[\[1\], \[2\], \[0\], \[0\]\], \[\[0\], \[0\], \[0\], \[1\]\]\], \[\[\[0\], \[0\], \[3\], \[0\]\], \[\[0\], \[0\], \[0\], \[0\]\]\]\]}}> : tensor<2x2x4x1xui8>, sign_encoding = "differential", weight_bits = 4 : i64}> : () -> tensor<2x2x4x1xui8> loc("fc")
// CHECK-NEXT:    %2 = "cim.mvm"(%0, %1) <{row_offset = 1 : i64}> : (tensor<2x?x7xui8>, tensor<2x2x4x1xui8>) -> tensor<2x?x2x2x1xi32> loc("fc")
// CHECK-NEXT:    %3 = "cim.adc"(%2) <{bits = 6 : i64, full_scale_bits = 6 : i64}> : (tensor<2x?x2x2x1xi32>) -> tensor<2x?x2x2x1xi32> loc("fc")
// CHECK-NEXT:    %4 = "cim.shift_add"(%3) <{cell_bits = 2 : i64, dac_bits = 2 : i64}> : (tensor<2x?x2x2x1xi32>) -> tensor<?x1xi32> loc("fc")
// CHECK-NEXT:    %5 = "cim.program"() <{array_cols = 4 : i64, array_rows = 4 : i64, cell_bits = 2 : i64, levels = dense<{{\[\[\[\[1, 0\], \[0, 3\]\], \[\[1, 0\], \[0, 1\]\]\], \[\[\[0, 2\], \[0, 0\]\], \[\[0, 1\], \[0, 0\]\]\]\]}}> : tensor<2x2x2x2xui8>, sign_encoding = "differential", weight_bits = 4 : i64}> : () -> tensor<2x2x2x2xui8> loc("fc")
// CHECK-NEXT:    %6 = "cim.mvm"(%0, %5) <{row_offset = 5 : i64}> : (tensor<2x?x7xui8>, tensor<2x2x2x2xui8>) -> tensor<2x?x2x2x2xi32> loc("fc")
// CHECK-NEXT:    %7 = "cim.adc"(%6) <{bits = 5 : i64, full_scale_bits = 5 : i64}> : (tensor<2x?x2x2x2xi32>) -> tensor<2x?x2x2x2xi32> loc("fc")
// CHECK-NEXT:    %8 = "cim.shift_add"(%7) <{cell_bits = 2 : i64, dac_bits = 2 : i64}> : (tensor<2x?x2x2x2xi32>) -> tensor<?x2xi32> loc("fc")
// CHECK-NEXT:    %9 = "cim.accumulate"(%4, %8) <{col_offsets = array<i64: 0, 0>, columns = 2 : i64}>
// CHECK-NEXT:    "func.return"(%9)
// CHECK-NOT:     "cim.linear"

// Offset encoding: one array per slice holding w + 8 (block 0: 9, 10, 5, 12 -> slice 0 1, 2, 1, 0 and slice 1 2, 2,
// 1, 3; block 1: [[13, 2], [8, 15]] -> [[1, 2], [0, 3]] and [[3, 0], [2, 3]]); the shift-adder takes 8 x the sum of
// the block's codes out again, so it reads the codes too. A 3-bit ADC drops the low bits of the full scale.
// OFFSET:      %0 = "cim.bit_planes"(%arg0)
// OFFSET-NEXT: %1 = "cim.program"() <{array_cols = 4 : i64, array_rows = 4 : i64, cell_bits = 2 : i64, levels = dense<{{\[\[\[\[1\], \[2\], \[1\], \[0\]\], \[\[2\], \[2\], \[1\], \[3\]\]\]\]}}> : tensor<1x2x4x1xui8>, sign_encoding = "offset", weight_bits = 4 : i64}>
// OFFSET-NEXT: %2 = "cim.mvm"(%0, %1) <{row_offset = 1 : i64}> : (tensor<2x?x7xui8>, tensor<1x2x4x1xui8>) -> tensor<2x?x1x2x1xi32> loc("fc")
// OFFSET-NEXT: %3 = "cim.adc"(%2) <{bits = 3 : i64, full_scale_bits = 6 : i64}>
// OFFSET-NEXT: %4 = "cim.shift_add"(%3, %arg0) <{cell_bits = 2 : i64, dac_bits = 2 : i64, row_offset = 1 : i64, rows = 4 : i64, weight_offset = 8 : i64}> : (tensor<2x?x1x2x1xi32>, tensor<?x7xui8>) -> tensor<?x1xi32> loc("fc")
// OFFSET-NEXT: %5 = "cim.program"() <{array_cols = 4 : i64, array_rows = 4 : i64, cell_bits = 2 : i64, levels = dense<{{\[\[\[\[1, 2\], \[0, 3\]\], \[\[3, 0\], \[2, 3\]\]\]\]}}> : tensor<1x2x2x2xui8>, sign_encoding = "offset", weight_bits = 4 : i64}>
// OFFSET-NEXT: %6 = "cim.mvm"(%0, %5) <{row_offset = 5 : i64}>
// OFFSET-NEXT: %7 = "cim.adc"(%6) <{bits = 3 : i64, full_scale_bits = 5 : i64}>
// OFFSET-NEXT: %8 = "cim.shift_add"(%7, %arg0) <{cell_bits = 2 : i64, dac_bits = 2 : i64, row_offset = 5 : i64, rows = 2 : i64, weight_offset = 8 : i64}>
// OFFSET-NEXT: %9 = "cim.accumulate"(%4, %8)

// Without tile, a layer taller than an array is an error that says what to run; so is an unknown encoding.
// UNTILED: cimc: error: 'cim.linear' op at loc("fc"): 6 rows do not fit arrays of 4 rows; run 'tile{array-rows=4}' before 'bit-slice'
// BAD: cimc: error: pass 'bit-slice' option 'sign-encoding' must be one of 'differential', 'offset', got 'twos'
"builtin.module"() ({
  "func.func"() <{arg_attrs = [{graph.name = "codes"}], function_type = (tensor<?x7xui8>) -> tensor<?x2xi32>, res_attrs = [{graph.name = "y0"}], sym_name = "main"}> ({
  ^bb0(%arg0: tensor<?x7xui8>):
    %0 = "cim.linear"(%arg0) <{input_bits = 4 : i64, row_offset = 1 : i64, weight_bits = 4 : i64, weights = dense<[[1, 0], [2, 0], [-3, 0], [4, 0], [5, -6], [0, 7]]> : tensor<6x2xi8>}> : (tensor<?x7xui8>) -> tensor<?x2xi32> loc("fc")
    "func.return"(%0) : (tensor<?x2xi32>) -> ()
  }) : () -> ()
}) : () -> ()
