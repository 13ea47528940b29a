typedef int cp__placeholder;
