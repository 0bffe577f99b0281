module strandbench

go 1.19
