// RUN: cimc opt %s --passes 'tile{array-rows=4}' | filecheck %s
// RUN: cimc opt %s --passes tile | filecheck %s --check-prefix=WIDE
// RUN: not cimc opt %s --passes 'tile{array-rows=0}' 2>&1 | filecheck %s --check-prefix=BAD

// On arrays of 4 rows, each layer becomes one cim.linear per row block (rows 4b .. 4b + 3 of its weights, read at
// row_offset 4b + its own row_offset) holding only the columns from the block's first to its last nonzero one, and
// a cim.accumulate adding the blocks' partial sums at those columns into the original result.
// "fc" (6 rows read from row 1): block 0 uses column 0 only, block 1 (2 rows, from row 5) both columns.
// CHECK-LABEL: "func.func"
// CHECK:       ^bb0(%arg0: tensor<?x13xui8>):
// CHECK-NEXT:    %0 = "cim.linear"(%arg0) <{input_bits = 8 : i64, row_offset = 1 : i64, weight_bits = 4 : i64, weights = dense<{{\[}}[1], [2], [-3], [4]]> : tensor<4x1xi8>}> : (tensor<?x13xui8>) -> tensor<?x1xi32> loc("fc")
// CHECK-NEXT:    %1 = "cim.linear"(%arg0) <{input_bits = 8 : i64, row_offset = 5 : i64, weight_bits = 4 : i64, weights = dense<{{\[}}[5, -6], [0, 7]]> : tensor<2x2xi8>}> : (tensor<?x13xui8>) -> tensor<?x2xi32> loc("fc")
// CHECK-NEXT:    %2 = "cim.accumulate"(%0, %1) <{col_offsets = array<i64: 0, 0>, columns = 2 : i64}> : (tensor<?x1xi32>, tensor<?x2xi32>) -> tensor<?x2xi32> loc("fc")
// "wide" (8 x 5 in a blob): block 0 is dense and stays a blob, named after the node and the block; block 1 has
// nonzero weights in columns 1 and 2 only, so it starts at column 1.
// CHECK-NEXT:    %3 = "cim.linear"(%arg0) <{input_bits = 8 : i64, row_offset = 0 : i64, weight_bits = 6 : i64, weights = dense_resource<wide.r0> : tensor<4x5xi8>}> {{.*}} loc("wide")
// CHECK-NEXT:    %4 = "cim.linear"(%arg0) <{input_bits = 8 : i64, row_offset = 4 : i64, weight_bits = 6 : i64, weights = dense<{{\[}}[2, 3], [7, 8], [12, 13], [17, 18]]> : tensor<4x2xi8>}> {{.*}} loc("wide")
// CHECK-NEXT:    %5 = "cim.accumulate"(%3, %4) <{col_offsets = array<i64: 0, 1>, columns = 5 : i64}> : (tensor<?x5xi32>, tensor<?x2xi32>) -> tensor<?x5xi32> loc("wide")
// "gap" (12 rows): block 1, rows 4..7, holds only zeros and is not programmed; blocks 0 and 2 remain.
// CHECK-NEXT:    %6 = "cim.linear"(%arg0) <{input_bits = 8 : i64, row_offset = 0 : i64, weight_bits = 4 : i64, weights = dense_resource<gap.r0> : tensor<4x5xi8>}> {{.*}} loc("gap")
// CHECK-NEXT:    %7 = "cim.linear"(%arg0) <{input_bits = 8 : i64, row_offset = 8 : i64, weight_bits = 4 : i64, weights = dense_resource<gap.r2> : tensor<4x5xi8>}> {{.*}} loc("gap")
// CHECK-NEXT:    %8 = "cim.accumulate"(%6, %7) <{col_offsets = array<i64: 0, 0>, columns = 5 : i64}> {{.*}} loc("gap")
// "fits" is one dense block already: left as is.
// CHECK-NEXT:    %9 = "cim.linear"(%arg0) <{input_bits = 8 : i64, row_offset = 0 : i64, weight_bits = 4 : i64, weights = dense<{{\[}}[1, -1], [2, -2], [3, -3], [4, -4]]> : tensor<4x2xi8>}> {{.*}} loc("fits")
// "edge" fits one array but its columns 0 and 2 are zero: one block of column 1.
// CHECK-NEXT:    %10 = "cim.linear"(%arg0) <{input_bits = 8 : i64, row_offset = 0 : i64, weight_bits = 4 : i64, weights = dense<{{\[}}[1], [2], [-3], [4]]> : tensor<4x1xi8>}> {{.*}} loc("edge")
// CHECK-NEXT:    %11 = "cim.accumulate"(%10) <{col_offsets = array<i64: 1>, columns = 3 : i64}> : (tensor<?x1xi32>) -> tensor<?x3xi32> loc("edge")
// CHECK-NEXT:    "func.return"(%2, %5, %8, %9, %11)

// On 64-row arrays (the default) every layer fits; only "edge" changes, its zero edge columns left out.
// WIDE:      ^bb0(%arg0: tensor<?x13xui8>):
// WIDE-NEXT:   %0 = "cim.linear"(%arg0) {{.*}} tensor<6x2xi8>}> {{.*}} loc("fc")
// WIDE-NEXT:   %1 = "cim.linear"(%arg0) {{.*}} weights = dense_resource<wide.weights> : tensor<8x5xi8>}> {{.*}} loc("wide")
// WIDE-NEXT:   %2 = "cim.linear"(%arg0) {{.*}} weights = dense_resource<gap.weights> : tensor<12x5xi8>}> {{.*}} loc("gap")
// WIDE-NEXT:   %3 = "cim.linear"(%arg0) {{.*}} tensor<4x2xi8>}> {{.*}} loc("fits")
// WIDE-NEXT:   %4 = "cim.linear"(%arg0) {{.*}} tensor<4x1xi8>}> {{.*}} loc("edge")
// WIDE-NEXT:   %5 = "cim.accumulate"(%4) <{col_offsets = array<i64: 1>, columns = 3 : i64}> {{.*}} loc("edge")
// WIDE-NEXT:   "func.return"(%0, %1, %2, %3, %5)

// BAD: cimc: error: pass 'tile' option 'array-rows' must be an integer from 1 to 4096, got 0
"builtin.module"() ({
  "func.func"() <{arg_attrs = [{graph.name = "codes"}], function_type = (tensor<?x13xui8>) -> (tensor<?x2xi32>, tensor<?x5xi32>, tensor<?x5xi32>, tensor<?x2xi32>, tensor<?x3xi32>), res_attrs = [{graph.name = "y0"}, {graph.name = "y1"}, {graph.name = "y2"}, {graph.name = "y3"}, {graph.name = "y4"}], sym_name = "main"}> ({
  ^bb0(%arg0: tensor<?x13xui8>):
    %0 = "cim.linear"(%arg0) <{input_bits = 8 : i64, row_offset = 1 : i64, weight_bits = 4 : i64, weights = dense<[[1, 0], [2, 0], [-3, 0], [4, 0], [5, -6], [0, 7]]> : tensor<6x2xi8>}> : (tensor<?x13xui8>) -> tensor<?x2xi32> loc("fc")
    %1 = "cim.linear"(%arg0) <{input_bits = 8 : i64, row_offset = 0 : i64, weight_bits = 6 : i64, weights = dense_resource<wide.weights> : tensor<8x5xi8>}> : (tensor<?x13xui8>) -> tensor<?x5xi32> loc("wide")
    %2 = "cim.linear"(%arg0) <{input_bits = 8 : i64, row_offset = 0 : i64, weight_bits = 4 : i64, weights = dense_resource<gap.weights> : tensor<12x5xi8>}> : (tensor<?x13xui8>) -> tensor<?x5xi32> loc("gap")
    %3 = "cim.linear"(%arg0) <{input_bits = 8 : i64, row_offset = 0 : i64, weight_bits = 4 : i64, weights = dense<[[1, -1], [2, -2], [3, -3], [4, -4]]> : tensor<4x2xi8>}> : (tensor<?x13xui8>) -> tensor<?x2xi32> loc("fits")
    %4 = "cim.linear"(%arg0) <{input_bits = 8 : i64, row_offset = 0 : i64, weight_bits = 4 : i64, weights = dense<[[0, 1, 0], [0, 2, 0], [0, -3, 0], [0, 4, 0]]> : tensor<4x3xi8>}> : (tensor<?x13xui8>) -> tensor<?x3xi32> loc("edge")
    "func.return"(%0, %1, %2, %3, %4) : (tensor<?x2xi32>, tensor<?x5xi32>, tensor<?x5xi32>, tensor<?x2xi32>, tensor<?x3xi32>) -> ()
  }) : () -> ()
}) : () -> ()

{-#
  dialect_resources: {
    builtin: {
      wide.weights: "0x01000000EDEEEFF0F1F2F3F4F5F6F7F8F9FAFBFCFDFEFF0900020300000007080000000C0D00000011120000",
      gap.weights: "0x0100000001020304050607010203040506070102030405060000000000000000000000000000000000000000FFFEFDFCFBFFFEFDFCFBFFFEFDFCFBFFFEFDFCFB"
    }
  }
#-}
