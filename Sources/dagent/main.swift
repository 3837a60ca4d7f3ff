print("dagent")
