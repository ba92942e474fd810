module github.com/edgefaas/edgefaas/sdk/go

go 1.26.0
